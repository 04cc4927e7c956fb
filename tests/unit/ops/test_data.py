"""The table lines of ``k2 status`` over a catalog on a temporary folder: a bar table's
freshness says how long ago its bars were last written, never a negative age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from k2.cli.output import status_renderable
from k2.config import Settings
from k2.lake.catalog import ensure_namespaces, open_catalog
from k2.lake.create import create_table
from k2.lake.tables import gold_bars
from k2.ops.components import Component
from k2.ops.data import TableFigures, table_figures
from k2.ops.status import Status
from tests.integration import gold_rows
from tests.integration.gold_rows import BINANCE_BTC

HOUR = "gold.ohlcv_1h"


def _hourly_bars(home: Path, now: datetime, written: datetime) -> Any:
    """A catalog whose 1-hour bars end with the bar still open at ``now``, last written at
    ``written``, after the hour before (written ten minutes before that)."""
    settings = Settings(_env_file=None, stack={"home": home})  # type: ignore[call-arg]
    catalog = open_catalog(settings.lake_access())
    ensure_namespaces(catalog)
    create_table(catalog, gold_bars("1h"))
    open_hour = now.replace(minute=0, second=0, microsecond=0)
    trades = gold_rows.trades(BINANCE_BTC, open_hour - timedelta(minutes=30), 40, 60_000_000)
    bars = gold_rows.bars(trades, "1h")
    assert [bar["bar_end"] > now for bar in bars] == [False, True]
    bars[0]["updated_at"] = written - timedelta(minutes=10)
    bars[1]["updated_at"] = written
    gold_rows.append(catalog, HOUR, bars)
    return catalog


def _status_line(figures: TableFigures) -> str:
    """The line of the status screen, 130 columns wide, that shows ``figures``."""
    component = Component("stream", "stream", True, "127.0.0.1:9402", 10, 60.0, "0.1.0")
    status = Status("/home/k2", True, "0.1.0", "abc", [component], tables=[figures])
    console = Console(record=True, width=130)
    console.print(status_renderable(status))
    return next(line for line in console.export_text().splitlines() if line.startswith(HOUR))


def test_an_open_bar_ending_in_the_future_leaves_the_freshness_positive(tmp_path: Path) -> None:
    """A bar table whose newest bar is still open is as fresh as its last write, 42 s ago."""
    now = datetime.now(UTC)
    written = now - timedelta(seconds=42)
    figures = table_figures(_hourly_bars(tmp_path, now, written), HOUR, now)
    assert figures.freshness_s == 42.0 and figures.newest == written.isoformat()
    assert figures.rows == 2 and figures.rows_last_minute == 1
    line = _status_line(figures)
    assert line.split()[-2:] == ["42s", "1"]
    assert not any(token.startswith("-") for token in line.split())


def test_a_write_ahead_of_this_clock_shows_as_fresh_never_negative(tmp_path: Path) -> None:
    """A newest write a few seconds ahead of this machine's clock shows 0s, not a negative age."""
    now = datetime.now(UTC)
    figures = table_figures(_hourly_bars(tmp_path, now, now + timedelta(seconds=5)), HOUR, now)
    assert figures.freshness_s == 0.0
    assert _status_line(figures).split()[-2:] == ["0s", "1"]
