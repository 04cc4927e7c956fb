"""``k2 sql`` and ``k2 coverage`` as a user runs them, over a private catalog: every table is a
view named like the table, results are exact in every format, errors are one line."""

from __future__ import annotations

import csv as csv_module
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from k2.lake.catalog import duckdb_connect, open_catalog
from k2.lake.create import create_table
from k2.lake.tables import bronze_trades
from k2.schemas import schema_json
from tests.conftest import make_settings
from tests.integration import gold_rows
from tests.integration.gold_rows import BINANCE_BTC, KRAKEN_ETH

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
TOTAL = "SELECT count(*) AS n, sum(price) AS total FROM gold.trades WHERE exchange = 'binance'"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A K2_HOME whose catalog holds 500 Binance and 100 Kraken trades and an unfilled gap."""
    path = tmp_path_factory.mktemp("sqlhome")
    settings = make_settings(path)
    catalog = gold_rows.create_gold(settings)
    rows = gold_rows.trades(BINANCE_BTC, T0, 500, 7_000_000)
    rows += gold_rows.trades(KRAKEN_ETH, T0, 100, 30_000_000)
    gold_rows.append(catalog, "gold.trades", rows)
    gap = gold_rows.gap(
        BINANCE_BTC,
        first_missing_id=900,
        last_missing_id=904,
        detected_us=T0 + timedelta(minutes=20),
    )
    gold_rows.append(catalog, "gold.gaps", [gap])
    create_table(catalog, bronze_trades("bronze.kraken_trades", schema_json("kraken_raw")))
    return path


def k2(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("K2_")}
    env.update({"K2_HOME": str(home), "K2_LOG_LEVEL": "WARNING", "K2_SPARK__DRIVER_MEMORY": "1g"})
    return subprocess.run(
        [sys.executable, "-m", "k2", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def expected_total(home: Path) -> tuple[int, Decimal]:
    settings = make_settings(home)
    location = open_catalog(settings.lake_access()).load_table("gold.trades").metadata_location
    query = TOTAL.replace("gold.trades", "iceberg_scan(?)")
    n, total = duckdb_connect(settings.lake).execute(query, [location]).fetchone()
    return n, total


def test_one_shot_statement_in_every_format(home: Path, tmp_path: Path) -> None:
    """A table in the terminal, CSV, JSON and Parquet all carry the exact sum."""
    n, total = expected_total(home)
    shown = k2(home, "sql", TOTAL)
    assert shown.returncode == 0, shown.stderr
    assert str(total).rstrip("0") in shown.stdout.replace("\n", "") and "1 row" in shown.stdout
    csv = k2(home, "sql", TOTAL, "--format", "csv")
    assert list(csv_module.reader(io.StringIO(csv.stdout)))[1] == [
        str(n),
        format(total, "f").rstrip("0").rstrip("."),
    ]
    body = json.loads(k2(home, "sql", TOTAL, "--format", "json").stdout)
    assert body["data"] == [{"n": n, "total": format(total, "f").rstrip("0").rstrip(".")}]
    out = tmp_path / "total.parquet"
    assert k2(home, "sql", TOTAL, "--format", "parquet", "--output", str(out)).returncode == 0
    assert pq.read_table(out).to_pylist() == [{"n": n, "total": total}]


def test_every_table_is_a_view_and_errors_are_one_line(home: Path) -> None:
    """Tables of every namespace are queryable by name; a bad statement prints one line."""
    listed = k2(
        home,
        "sql",
        "SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL",
        "--format",
        "csv",
    )
    names = {tuple(row) for row in csv_module.reader(io.StringIO(listed.stdout))}
    assert {("gold", "trades"), ("gold", "ohlcv_1m"), ("gold", "gaps")} <= names
    assert ("bronze", "kraken_trades") in names
    failed = k2(home, "sql", "SELECT * FROM gold.nope")
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1 and failed.stderr.startswith("error: Catalog Error")
    assert "Traceback" not in failed.stderr


def test_interactive_prompt_runs_statements_and_keeps_history(home: Path) -> None:
    """Statements typed at the prompt run when they end with ';' and go to the history file."""
    typed = "SELECT count(*) AS kraken_trades\nFROM gold.trades WHERE exchange = 'kraken';\n\\q\n"
    session = k2(home, "sql", stdin=typed)
    assert session.returncode == 0, session.stderr
    assert "kraken_trades" in session.stdout and "100" in session.stdout
    assert "kraken_trades" in (home / "sql_history").read_text()


def test_spark_engine_gives_the_same_result(home: Path) -> None:
    """--engine spark runs the same statement through Spark SQL, with the same exact sum."""
    n, total = expected_total(home)
    result = k2(home, "sql", TOTAL, "--engine", "spark", "--format", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    body = json.loads(result.stdout)
    assert body["data"] == [{"n": n, "total": format(total, "f").rstrip("0").rstrip(".")}]


def test_coverage_prints_incomplete_hours_and_a_total(home: Path) -> None:
    """k2 coverage lists the hour with the unfilled gap and counts the complete ones."""
    result = k2(
        home, "coverage", "--start", "2024-05-01T10:00:00Z", "--end", "2024-05-01T12:00:00Z"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    gap_line = next(line for line in lines if "ids 900..904" in line)
    assert "BTC/USDT" in gap_line and "2024-05-01 10:00" in gap_line and " gaps " in gap_line
    assert lines[-1] == "1 of 4 symbol-hours complete"
