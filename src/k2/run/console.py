"""What ``k2 run`` shows a person while it runs.

In a terminal: a compact live summary, redrawn every two seconds: each part (up or exited), per
exchange and symbol the trades per second, delivered and gaps, per layer the rows written and the
freshness, and the last warnings and errors the parts logged (their full logs are in files).
Otherwise: every line each part logs, copied to stderr as it is written (JSON, one object a line).
Everything shown comes from the parts' own ``/metrics`` and log files.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

from rich.console import Console as RichConsole
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from k2.stack.scrape import Rate, Scrape, scrape

_REFRESH_S = 2.0
_NOTICES = 6
# Rows written per layer, and the metric that dates each layer's newest data (see the summary).
LAYERS = (
    ("bronze", "k2_bronze_rows_written_total"),
    ("silver", "k2_silver_rows_written_total"),
    ("gold", "k2_gold_rows_written_total"),
)


class RunningPart(Protocol):
    """What the console needs of a running part (see :class:`k2.run.supervisor.Part`)."""

    @property
    def name(self) -> str: ...

    @property
    def log(self) -> Path: ...

    @property
    def metrics_url(self) -> str | None: ...

    @property
    def pid(self) -> int: ...

    def exit_code(self) -> int | None: ...


@dataclass
class _Tail:
    """New complete lines of one log file since the last read."""

    path: Path
    offset: int = 0
    _rest: bytes = b""

    def lines(self) -> list[str]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return []
        self.offset += len(data)
        *complete, self._rest = (self._rest + data).split(b"\n")
        return [line.decode("utf-8", errors="replace") for line in complete]


class LogCopier:
    """Copies every new line of each part's log to ``out`` (the non-terminal console)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self._tails: dict[str, _Tail] = {}

    def watch(self, parts: Sequence[RunningPart]) -> None:
        for part in parts:
            tail = self._tails.setdefault(part.name, _Tail(part.log, _size(part.log)))
            for line in tail.lines():
                self.out.write(line + "\n")
        self.out.flush()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def notice_of(part: str, line: str) -> str | None:
    """A one-line notice for a WARNING or ERROR log line (JSON or console format), else None."""
    try:
        event = json.loads(line)
    except ValueError:
        lowered = line.lower()
        return f"{part}: {line.strip()[:160]}" if "[error" in lowered else None
    if not isinstance(event, dict) or event.get("level") not in ("warning", "error", "critical"):
        return None
    stamp = str(event.get("timestamp", ""))[11:19]
    skip = {"event", "level", "timestamp", "logger"}
    context = " ".join(f"{k}={v}" for k, v in event.items() if k not in skip)
    return f"{stamp} {part} {event['level'].upper()} {event.get('event')} {context}"[:200]


@dataclass(frozen=True)
class SymbolRow:
    exchange: str
    symbol: str
    per_s: float
    delivered: float
    gaps: float
    age_s: float | None


@dataclass
class _Figures:
    """The latest figures of the run, from the parts' metrics."""

    scrapes: dict[str, Scrape] = field(default_factory=dict)
    rates: dict[str, Rate] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)  # running parts whose metrics did not answer

    def update(self, parts: Sequence[RunningPart]) -> None:
        for part in parts:  # a part that exited keeps its last figures on the screen
            if part.metrics_url is None or part.exit_code() is not None:
                continue
            found = scrape(part.metrics_url, timeout_s=1.0)
            if found is None:
                self.silent.add(part.name)
            else:
                self.silent.discard(part.name)
                self.scrapes[part.name] = found
                rate = self.rates.setdefault(part.name, Rate())
                rate.update(found, "k2_ingest_trades_delivered_total", "exchange", "symbol")

    def symbols(self) -> list[SymbolRow]:
        """Per exchange and symbol: trades/s, delivered, gaps, age of the last trade."""
        rows = []
        for name, found in sorted(self.scrapes.items()):
            delivered = found.by("k2_ingest_trades_delivered_total", "exchange", "symbol")
            gaps = found.by("k2_ingest_gaps_total", "exchange", "symbol")
            ages = found.by("k2_ingest_last_trade_age_seconds", "exchange", "symbol")
            per_s = self.rates[name].rates
            for key in sorted(delivered):
                rows.append(
                    SymbolRow(
                        key[0],
                        key[1],
                        per_s.get(key, 0.0),
                        delivered[key],
                        gaps.get(key, 0.0),
                        ages.get(key),
                    )
                )
        return rows

    def layers(self) -> list[tuple[str, float | None, float | None]]:
        """(layer, rows written by this run, freshness seconds) per layer the job writes."""
        rows = []
        now = time.time()
        for found in self.scrapes.values():
            last_commit = found.total("k2_stream_last_commit_timestamp_seconds")
            gold = found.by("k2_gold_freshness_seconds", "exchange")
            for layer, metric in LAYERS:
                if metric.removesuffix("_total") not in found.families:
                    continue
                fresh: float | None = None
                if layer == "gold" and gold:
                    fresh = max(gold.values())
                elif last_commit:
                    fresh = now - last_commit
                rows.append((layer, found.total(metric), fresh))
        return rows


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.0f}h"


class LiveSummary:
    """The terminal console of ``k2 run``: a live summary redrawn in place."""

    def __init__(self, header: str, console: RichConsole | None = None) -> None:
        self.header = header
        self.console = console or RichConsole(stderr=True)
        self.figures = _Figures()
        self.notices: deque[str] = deque(maxlen=_NOTICES)
        self._tails: dict[str, _Tail] = {}
        self._parts: Sequence[RunningPart] = ()
        self._next = 0.0
        self._live = Live(
            self.render(), console=self.console, refresh_per_second=1, transient=False
        )
        self._live.start()

    def echo(self, line: str) -> None:
        self._live.console.print(Text(line))

    def watch(self, parts: Sequence[RunningPart]) -> None:
        now = time.monotonic()
        if now < self._next and all(p.exit_code() is None for p in parts):
            return
        self._next = now + _REFRESH_S
        self._parts = parts
        for part in parts:
            tail = self._tails.setdefault(part.name, _Tail(part.log, _size(part.log)))
            for line in tail.lines():
                notice = notice_of(part.name, line)
                if notice is not None:
                    self.notices.append(notice)
        self.figures.update(parts)
        self._live.update(self.render(), refresh=True)

    def close(self) -> None:
        self._live.stop()

    def render(self) -> RenderableType:
        blocks: list[RenderableType] = [Text(self.header, style="bold")]
        blocks.append(self._parts_table())
        symbols = self.figures.symbols()
        if symbols:
            blocks.append(_symbols_table(symbols))
        layers = self.figures.layers()
        if layers:
            blocks.append(_layers_table(layers))
        if self.notices:
            blocks.append(Text("recent warnings and errors (full logs in the files above):"))
            blocks.extend(
                Text(f"  {notice}", style="yellow", no_wrap=True, overflow="ellipsis")
                for notice in self.notices
            )
        return Group(*blocks)

    def _parts_table(self) -> Table:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("part", "state", "pid", "log"):
            table.add_column(column)
        for part in self._parts:
            code = part.exit_code()
            state = "running" if code is None else f"exited {code}"
            if code is None and part.name in self.figures.silent:
                state = "[yellow]not answering (figures are old)[/]"
            table.add_row(part.name, state, str(part.pid), str(part.log))
        return table


def _symbols_table(rows: list[SymbolRow]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column, justify in (
        ("exchange", "left"),
        ("symbol", "left"),
        ("trades/s", "right"),
        ("delivered", "right"),
        ("gaps", "right"),
        ("last trade", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            row.exchange,
            row.symbol,
            f"{row.per_s:.1f}",
            f"{row.delivered:,.0f}",
            f"{row.gaps:.0f}",
            _age(row.age_s),
        )
    return table


def _layers_table(rows: list[tuple[str, float | None, float | None]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("layer")
    table.add_column("rows (this run)", justify="right")
    table.add_column("freshness", justify="right")
    for layer, written, fresh in rows:
        table.add_row(layer, "-" if written is None else f"{written:,.0f}", _age(fresh))
    return table
