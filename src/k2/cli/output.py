"""Terminal output of the commands, apart from what they do."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_SERVICE_ROW = "{:<{width}} {:<9} {:<44} {:>7} {:<9} {:>8}  {}"


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
