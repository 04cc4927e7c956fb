"""Terminal output of the commands, apart from what they do."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

_SERVICE_ROW = "{:<{width}} {:<9} {:<44} {:>7} {:<9} {:>8}  {}"
_UNBOUNDED = 1_000_000  # a width no table reaches: measures a table's natural width


def service_table(rows: Iterable[Any], echo: Callable[[str], None]) -> None:
    """One line per stack service: state, address, pid, version, uptime, log file."""
    rows = list(rows)
    width = max([10, *(len(row.name) for row in rows)])
    header = ("component", "state", "address", "pid", "version", "uptime", "log")
    echo(_SERVICE_ROW.format(*header, width=width))
    for row in rows:
        state = ("up" if row.healthy else "starting") if row.up else "down"
        uptime = f"{row.uptime_s:.0f}s" if row.uptime_s is not None else "-"
        pid = str(row.pid) if row.pid else "-"
        fields = (row.name, state, row.address, pid, row.version, uptime, row.log)
        echo(_SERVICE_ROW.format(*fields, width=width))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h" if seconds < 172800 else f"{seconds / 86400:.0f}d"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def not_running_line(home: str) -> str:
    """The one line ``k2 status`` prints when nothing of the pipeline runs."""
    return (
        f"K2 is not running (nothing up for K2_HOME={home}); start it with `make run` or "
        "`k2 run` (add --source simulator without internet access)"
    )


def _table(*columns: str) -> Any:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for column in columns:
        table.add_column(column)
    return table


def _components(status: Any) -> Any:
    table = _table("component", "state", "address", "pid", "uptime", "version", "git sha", "note")
    for item in status.components:
        state = ("starting" if item.detail == "starting" else "up") if item.up else "down"
        note = item.stale or item.detail
        table.add_row(
            item.name,
            f"[green]{state}[/]" if item.up else f"[red]{state}[/]",
            item.address,
            str(item.pid) if item.pid else "-",
            _age(item.uptime_s),
            item.version,
            item.git_sha,
            f"[red]{note}[/]" if item.stale else note,
        )
    return table


def _symbols(status: Any) -> Any:
    table = _table(
        "exchange", "symbol", "last trade", "delivered/s", "delivered", "unfilled gaps 1h"
    )
    for row in status.symbols:
        per_s = "-" if row.delivered_per_s is None else f"{row.delivered_per_s:.1f}"
        gaps = (
            f"{row.unfilled_gaps_1h} ({row.unfilled_trades_1h} trades)"
            if row.unfilled_gaps_1h
            else "0"
        )
        table.add_row(
            row.exchange,
            row.symbol,
            _age(row.last_trade_age_s),
            per_s,
            _number(row.delivered),
            gaps,
        )
    return table


def _topics(status: Any) -> Any:
    table = _table("raw topic", "end offsets", "settled by Bronze", "lag")
    for row in status.topics:
        settled = None if row.settled is None else sum(o + 1 for o in row.settled.values())
        table.add_row(
            row.topic, _number(sum(row.end_offsets.values())), _number(settled), _number(row.lag)
        )
    return table


def _tables(status: Any) -> Any:
    table = _table("table", "rows", "newest row", "freshness", "rows last minute")
    for row in status.tables:
        newest = row.newest[:19].replace("T", " ") if row.newest else "-"
        table.add_row(
            row.table,
            _number(row.rows),
            newest,
            _age(row.freshness_s),
            _number(row.rows_last_minute),
        )
    return table


def status_renderable(status: Any) -> Any:
    """``k2 status`` as rich renderables: components, then the data (one screen)."""
    from rich.console import Group
    from rich.text import Text

    if not status.running:
        return Text(not_running_line(status.home))
    source = f" · source {status.source}" if status.source else ""
    blocks: list[Any] = [
        Text(
            f"K2 {status.installed_version} ({status.installed_sha}) · "
            f"K2_HOME {status.home}{source}",
            style="bold",
        ),
        _components(status),
    ]
    if status.symbols:
        blocks += [Text(""), _symbols(status)]
    if status.topics:
        blocks += [Text(""), _topics(status)]
    if status.tables:
        blocks += [Text(""), _tables(status)]
    bad = status.bad
    blocks.append(
        Text(
            f"\nbad records kept aside: DLQ {_number(bad.dlq)} · Bronze rejects "
            f"{_number(bad.rejects)} · quarantined {_number(bad.quarantined)}"
        )
    )
    blocks += [Text(f"could not read {what}", style="yellow") for what in status.unreadable]
    return Group(*blocks)


_MARKS = {"ok": "✓", "failed": "✗", "not reached": "–"}


def doctor_line(check: Any) -> list[str]:
    """One stage of ``k2 doctor`` as a checklist line (and its cause and fix when broken)."""
    mark = _MARKS[check.state]
    if check.state == "ok":
        return [f"{mark} {check.title:<50} {check.detail} ({check.seconds:.1f}s)"]
    if check.state == "not reached":
        return [f"{mark} {check.title:<50} not reached"]
    return [f"{mark} {check.title}", f"    cause: {check.cause}", f"    fix:   {check.fix}"]


def doctor_verdict(report: Any) -> str:
    broken = report.broken
    if broken is None:
        return f"healthy: every stage passed in {report.seconds:.1f}s"
    return f"broken at stage {broken.stage!r}: {broken.title} (checked in {report.seconds:.1f}s)"


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, list | dict):
        from k2.lake.export import json_value  # pyarrow only once there is a result

        return json.dumps(value, default=json_value, ensure_ascii=False)
    return str(value)


def result_text(table: Any) -> tuple[list[str], list[list[str]]]:
    """A query result's column names and each row's values as text: decimals exact, times
    RFC 3339 in UTC with µs (as ``--format json`` and ``csv`` write them), ``NULL`` for none."""
    from k2.lake.export import text_batch  # pyarrow only once there is a result

    rows: list[list[str]] = []
    for batch in table.to_batches():
        columns = [column.to_pylist() for column in text_batch(batch).columns]
        rows.extend([_cell(value) for value in row] for row in zip(*columns, strict=True))
    return list(table.schema.names), rows


def record_lines(names: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> Iterator[str]:
    """psql's expanded display (``\\x``): per row a ``-[ RECORD n ]`` line, then one
    ``column | value`` line per column, names aligned.

    Values are written whole (a value wider than ``width`` wraps in the terminal, never
    folded into the text); a line break inside a value continues under the ``|``. The
    record line reaches the widest ``column | value`` line, at most ``width``.
    """
    from rich.cells import cell_len  # rich only for the commands that draw

    name_width = max((cell_len(name) for name in names), default=0)
    value_width = max(
        (cell_len(line) for row in rows for value in row for line in value.split("\n")),
        default=0,
    )
    rule_width = min(width, name_width + 3 + value_width)
    for number, row in enumerate(rows, 1):
        head = f"-[ RECORD {number} ]"
        if len(head) <= name_width:
            head += "-" * (name_width + 1 - len(head)) + "+"
        yield head + "-" * (rule_width - len(head))
        for name, value in zip(names, row, strict=True):
            first, *more = value.split("\n")
            yield f"{name}{' ' * (name_width - cell_len(name))} | {first}"
            yield from (f"{' ' * name_width} | {line}" for line in more)


def print_result(table: Any, console: Any, expanded: bool | None = None) -> None:
    """A query result on ``console``: a table, or one block per record (:func:`record_lines`).

    ``expanded`` True forces the records, False the table; None draws records when the table
    at its natural width (every value on one line) is wider than the console and has more
    than one column, as psql's ``\\x auto``, since rich would otherwise fold each cell into a
    narrow strip. Both show the text of :func:`result_text`, nothing cut or rounded.
    """
    from rich.table import Table  # rich only for the commands that draw
    from rich.text import Text

    names, rows = result_text(table)
    grid = Table(show_lines=False)
    for name in names:
        grid.add_column(Text(name), overflow="fold")
    for row in rows:
        grid.add_row(*(Text(value) for value in row))  # a value is text, never rich markup
    if expanded is None:
        natural = console.measure(grid, options=console.options.update_width(_UNBOUNDED))
        expanded = len(names) > 1 and natural.maximum > console.width
    if expanded:
        for line in record_lines(names, rows, console.width):
            console.out(line, highlight=False)
    else:
        console.print(grid)
    console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}")
