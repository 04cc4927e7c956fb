"""One Iceberg catalog shared by Spark, pyiceberg and DuckDB, with exact decimals and µs times."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from k2.config import Settings
from k2.lake.catalog import (
    NAMESPACES,
    duckdb_connect,
    duckdb_scan_sql,
    ensure_namespaces,
    open_catalog,
)

pytestmark = pytest.mark.integration

ROWS = [
    ("t-1", Decimal("65000.123456789012345678"), datetime(2024, 5, 1, 12, 0, 0, 123456, UTC)),
    ("t-2", Decimal("0.000000000000000001"), datetime(2024, 5, 1, 13, 59, 59, 999999, UTC)),
    ("t-3", Decimal("12345678901234567890.5"), datetime(1970, 1, 1, 0, 0, 0, 1, UTC)),
]


def test_lake_init_is_idempotent(settings: Settings) -> None:
    """Creating the lake's namespaces again creates nothing new, and every layer's namespace
    exists."""
    catalog = open_catalog(settings.lake_access())
    ensure_namespaces(catalog)
    assert ensure_namespaces(catalog) == []
    assert {ns[0] for ns in catalog.list_namespaces()} >= set(NAMESPACES)


def test_spark_table_reads_back_exactly_in_pyiceberg_and_duckdb(
    spark: Any, settings: Settings
) -> None:
    """A table Spark writes reads back exactly in pyiceberg and DuckDB from the same catalog,
    decimal(38,18) and microsecond times included."""
    spark.sql(
        "CREATE TABLE k2.bronze.lake_probe (id string, price decimal(38,18), ts timestamp) "
        "USING iceberg PARTITIONED BY (hours(ts))"
    )
    frame = spark.createDataFrame(
        [(i, p, t) for i, p, t in ROWS], "id string, price decimal(38,18), ts timestamp"
    )
    frame.writeTo("k2.bronze.lake_probe").append()

    table = open_catalog(settings.lake_access()).load_table("bronze.lake_probe")
    got = sorted((r["id"], r["price"], r["ts"]) for r in table.scan().to_arrow().to_pylist())
    assert got == ROWS
    assert str(table.schema().find_field("price").field_type) == "decimal(38, 18)"

    con = duckdb_connect(settings.lake)
    scan = duckdb_scan_sql(settings.lake_access(), "bronze.lake_probe")
    rows = con.execute(f"SELECT id, price, ts FROM {scan} ORDER BY id").fetchall()
    assert [(i, p, t.astimezone(UTC)) for i, p, t in rows] == ROWS


def test_pyiceberg_append_is_read_by_the_running_spark_session(
    spark: Any, settings: Settings
) -> None:
    """Rows pyiceberg appends are read by a Spark session that had already opened the table."""
    catalog = open_catalog(settings.lake_access())
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("price", pa.decimal128(38, 18)),
            ("ts", pa.timestamp("us", tz="UTC")),
        ]
    )
    table = catalog.create_table("silver.lake_probe", schema=schema)
    spark.sql("SELECT count(*) FROM k2.silver.lake_probe").collect()  # Spark has seen the table
    table.append(
        pa.Table.from_pylist(
            [dict(zip(("id", "price", "ts"), r, strict=True)) for r in ROWS], schema=schema
        )
    )
    got = spark.sql("SELECT id, price, ts FROM k2.silver.lake_probe ORDER BY id").collect()
    assert [(r.id, r.price, r.ts.replace(tzinfo=UTC)) for r in got] == ROWS
