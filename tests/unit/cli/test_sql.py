"""What ``k2 sql`` draws in a terminal of a given width, over a catalog on a temporary folder
(DuckDB in the process, no services): a result wider than the terminal comes out as records,
one that fits as a table, and the text formats never depend on the terminal."""

from __future__ import annotations

import csv as csv_module
import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from structlog.testing import capture_logs

from k2.cli import main
from k2.config import Settings
from k2.lake.export import decimal_text, time_text
from tests.integration import gold_rows
from tests.integration.gold_rows import BINANCE_BTC

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
WIDE = "SELECT * FROM gold.ohlcv_1m ORDER BY bar_start LIMIT 3"
# Four columns: about 90 characters wide as a table, so it fits 130 columns but not 60.
MEDIUM = (
    "SELECT symbol, bar_start, vwap, quote_volume FROM gold.ohlcv_1m ORDER BY bar_start LIMIT 2"
)
NARROW = "SELECT symbol, count(*) AS bars, sum(volume) AS volume FROM gold.ohlcv_1m GROUP BY symbol"


def _settings(home: Path) -> Settings:
    return Settings(_env_file=None, stack={"home": home})  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def bars() -> list[dict[str, Any]]:
    """The 1-minute bars of 300 Binance trades, as exact Python values."""
    return gold_rows.bars(gold_rows.trades(BINANCE_BTC, T0, 300, 7_000_000), "1m")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, bars: list[dict[str, Any]]) -> Path:
    """A K2_HOME whose gold.ohlcv_1m holds ``bars``."""
    path = tmp_path_factory.mktemp("sqlshow")
    gold_rows.append(gold_rows.create_gold(_settings(path)), "gold.ohlcv_1m", bars)
    return path


def k2_sql(home: Path, columns: int, *args: str, typed: str | None = None) -> Result:
    """``k2 sql ARGS`` in a terminal ``columns`` wide, ``typed`` at its prompt (its logs kept
    apart, as a configured command writes them to stderr)."""
    with capture_logs():
        return CliRunner().invoke(
            main,
            ["sql", *args],
            input=typed,
            obj=_settings(home),
            env={"COLUMNS": str(columns)},
        )


def _answers(session: Result) -> str:
    """What the prompt printed, without its ``k2>`` prompts (the typed text is not echoed)."""
    return session.stdout.replace("k2> ", "")


def _volume(bars: list[dict[str, Any]]) -> str:
    return decimal_text(sum((bar["volume"] for bar in bars), Decimal(0)))


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return decimal_text(value)
    return time_text(value) if isinstance(value, datetime) else str(value)


def _records(stdout: str) -> list[list[str]]:
    """The lines of each record block, header line first (the row count after them left out)."""
    blocks: list[list[str]] = []
    for line in stdout.splitlines():
        if line.startswith("-[ RECORD "):
            blocks.append([])
        if blocks and (line.startswith("-[ RECORD ") or " | " in line):
            blocks[-1].append(line)
    return blocks


def test_a_result_wider_than_the_terminal_prints_one_block_per_record(
    home: Path, bars: list[dict[str, Any]]
) -> None:
    """At 130 columns the 17 columns of a bar come out as aligned `column | value` lines,
    each value whole and exact, instead of a table folded into narrow strips."""
    shown = k2_sql(home, 130, WIDE)
    assert shown.exit_code == 0, shown.output
    assert "┃" not in shown.stdout and shown.stdout.splitlines()[-1] == "3 rows"
    records = _records(shown.stdout)
    assert [block[0].split("]")[0] for block in records] == [f"-[ RECORD {n} " for n in (1, 2, 3)]
    names = list(bars[0])
    for block, bar in zip(records, bars[:3], strict=True):
        head, *lines = block
        bar_at = head.index("+")
        assert all(line.index("|") == bar_at for line in lines)
        assert [(name.rstrip(), value) for name, value in (ln.split(" | ") for ln in lines)] == [
            (name, _text(bar[name])) for name in names
        ]
    assert max(len(line) for line in shown.stdout.splitlines()) <= 130


def test_a_result_that_fits_the_terminal_prints_as_a_table(
    home: Path, bars: list[dict[str, Any]]
) -> None:
    """A narrow result is a table whose exact sum stays whole on one line."""
    shown = k2_sql(home, 60, NARROW)
    assert shown.exit_code == 0, shown.output
    assert "RECORD" not in shown.stdout and shown.stdout.splitlines()[-1] == "1 row"
    lines = shown.stdout.splitlines()
    header = next(line for line in lines if "symbol" in line)
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == ["symbol", "bars", "volume"]
    row = next(line for line in lines if "BTC/USDT" in line)
    assert [cell.strip() for cell in row.split("│")[1:-1]] == [
        "BTC/USDT",
        str(len(bars)),
        _volume(bars),
    ]


def test_the_terminal_width_chooses_between_table_and_records(home: Path) -> None:
    """The same four columns are a table at 130 columns and records at 60."""
    wide, narrow = k2_sql(home, 130, MEDIUM), k2_sql(home, 60, MEDIUM)
    assert "┃ symbol" in wide.stdout and "RECORD" not in wide.stdout
    assert "┃" not in narrow.stdout and len(_records(narrow.stdout)) == 2
    assert max(len(line) for line in wide.stdout.splitlines()) <= 130


def test_the_flags_force_records_or_the_table(home: Path, bars: list[dict[str, Any]]) -> None:
    """-x draws records even when the table fits; --no-expanded keeps the table when it does
    not."""
    forced = k2_sql(home, 130, NARROW, "-x")
    volume = _volume(bars)
    assert forced.stdout.splitlines() == [
        "-[ RECORD 1 ]" + "-" * (len("volume | ") + len(volume) - len("-[ RECORD 1 ]")),
        "symbol | BTC/USDT",
        f"bars   | {len(bars)}",
        f"volume | {volume}",
        "1 row",
    ]
    table = k2_sql(home, 130, WIDE, "--no-expanded")
    assert table.exit_code == 0 and "┃" in table.stdout and "RECORD" not in table.stdout


def test_text_formats_ignore_the_terminal_and_refuse_the_layout_flags(
    home: Path, bars: list[dict[str, Any]]
) -> None:
    """CSV and JSON are the same at any width, with exact decimals; -x with --format csv is a
    one-line error."""
    for fmt in ("csv", "json"):
        narrow = k2_sql(home, 60, WIDE, "--format", fmt)
        assert narrow.exit_code == 0 and "RECORD" not in narrow.stdout
        assert narrow.stdout == k2_sql(home, 200, WIDE, "--format", fmt).stdout
    rows = list(
        csv_module.DictReader(io.StringIO(k2_sql(home, 60, WIDE, "--format", "csv").stdout))
    )
    assert [row["vwap"] for row in rows] == [decimal_text(bar["vwap"]) for bar in bars[:3]]
    refused = k2_sql(home, 130, WIDE, "--format", "csv", "-x")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr == (
        "error: --expanded chooses how the terminal table is drawn; --format csv has none\n"
    )


def test_an_output_file_without_a_file_format_is_refused(home: Path, tmp_path: Path) -> None:
    """--output with the terminal's table is a one-line error naming the formats, and no file
    is written, instead of the table going to the terminal with the file silently skipped."""
    target = tmp_path / "bars.out"
    refused = k2_sql(home, 130, WIDE, "--output", str(target))
    assert refused.exit_code == 1 and refused.stdout == "" and not target.exists()
    assert refused.stderr == (
        "error: --output writes a file: give --format csv, json or parquet with it\n"
    )


def test_the_prompt_draws_results_by_the_same_rule(home: Path) -> None:
    """At the prompt a wide result is records and a narrow one a table; -x holds there too."""
    typed = f"{WIDE};\n{NARROW};\n\\q\n"
    shown = k2_sql(home, 130, typed=typed)
    assert shown.exit_code == 0, shown.output
    assert len(_records(_answers(shown))) == 3 and "┃ symbol" in shown.stdout
    forced = k2_sql(home, 130, "-x", typed=typed)
    assert len(_records(_answers(forced))) == 4 and "┃" not in forced.stdout
