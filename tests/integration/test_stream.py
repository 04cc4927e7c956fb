"""The streaming job against the real broker, registry, Spark and Iceberg: every layer, once.

Each test runs the job over its own topics and tables (a :class:`Lane`), with half-second
triggers; waits poll the tables with a deadline.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from k2.config import MaintenanceSettings, Settings
from k2.domain import BAR_INTERVALS
from k2.errors import WriterBusyError
from k2.jobs.commit import above
from k2.jobs.kept import kept, release
from k2.jobs.lock import writer_lock
from k2.jobs.maintain import maintain
from k2.jobs.rebuild import Window, rebuild
from k2.lake.catalog import duckdb_connect, duckdb_scan_sql, open_catalog
from k2.lake.maintenance import maintained_tables

from .lanes import (
    RawProducer,
    binance_trade,
    count,
    expected_bars,
    kraken_v2,
    make_lane,
    rows,
    running,
    to_record,
    wait_until,
)

pytestmark = pytest.mark.integration

T0 = 1_764_547_200_000_000  # 2025-12-01T00:00:00Z, µs


def _kraken(i: int, received_us: int | None = None) -> Any:
    symbol = ("BTC/USD", "ETH/USD")[i % 2]
    price = f"{60000 + i}.{i % 10}{i % 7}"
    return kraken_v2(
        symbol,
        1000 + i,
        price,
        f"0.{i + 1:04d}",
        T0 + i * 7_000_000,
        received_us,
        side="buy" if i % 3 else "sell",
    )


def _binance(i: int) -> Any:
    symbol = ("BTCUSDT", "ETHUSDT")[i % 2]
    return binance_trade(
        symbol,
        5000 + i,
        f"{3000 + i}.5",
        f"{i + 1}.25",
        T0 + i * 5_000_000,
        buyer_is_maker=bool(i % 2),
    )


def test_every_layer_gets_each_trade_once(
    spark: Any, settings: Settings, stack: Any, tmp_path: Path
) -> None:
    """Each trade lands once in every layer: Bronze keeps every copy, Silver every valid one, Gold
    one row per trade, invalid trades are quarantined with their reasons, and the bars are those of
    Gold's trades."""
    lane = make_lane(settings, tmp_path, "layers")
    producer = RawProducer(lane)
    kraken = [_kraken(i) for i in range(120)]
    binance = [_binance(i) for i in range(90)]
    invalid = [
        to_record(_kraken(200), qty="0"),  # zero quantity
        to_record(_kraken(201), side="hold"),  # unknown side
        to_record(_kraken(202), timestamp="2026-12-01T00:00:00.000000Z"),  # a year ahead
    ]
    producer.send([to_record(t) for t in kraken[:60]] + invalid, "kraken")
    producer.send([to_record(t) for t in binance], "binance")
    # A reconnect snapshot re-sends ten trades; a backfill overlaps five more.
    producer.send(
        [to_record(t) for t in kraken[50:120]] + [to_record(t) for t in kraken[55:60]], "kraken"
    )

    with contextlib.contextmanager(running)(spark, lane):
        wait_until(
            lambda: count(spark, lane.table("gold.trades")) >= 210
            and count(spark, lane.table("silver.quarantine")) >= 3,
            "gold and the quarantine",
        )

    gold = rows(spark, lane.table("gold.trades"))
    ids = Counter(r["message_id"] for r in gold)
    assert len(gold) == 210 and max(ids.values()) == 1
    assert count(spark, lane.table("bronze.kraken_trades")) == 60 + 3 + 75
    assert count(spark, lane.table("silver.kraken_trades")) == 135  # every valid copy
    quarantine = rows(spark, lane.table("silver.quarantine"))
    reasons = sorted(tuple(r["reasons"]) for r in quarantine)
    assert reasons == [
        ("exchange_ts_in_future",),
        ("quantity_not_positive",),
        ("side_unknown",),
    ]
    by_id = {r["message_id"]: r for r in gold}
    for raw in kraken:
        row = by_id[f"kraken:{raw.native_symbol}:{raw.trade_key}"]
        assert row["price"] == Decimal(str(raw.fields["price"]))
        assert row["quantity"] == Decimal(str(raw.fields["qty"]))
        assert row["quote_quantity"] == row["price"] * row["quantity"]
    bars = expected_bars(
        (
            (
                r["exchange"],
                r["symbol"],
                _micros(r["exchange_ts"]),
                r["trade_id"],
                r["price"],
                r["quantity"],
                r["side"],
            )
            for r in gold
        ),
        BAR_INTERVALS["1m"],
    )
    stored = {
        (r["exchange"], r["symbol"], _micros(r["bar_start"])): r
        for r in rows(spark, lane.table("gold.ohlcv_1m"))
    }
    assert set(stored) == set(bars)
    for key, bar in bars.items():
        got = stored[key]
        assert {name: got[name] for name in bar.__dataclass_fields__} == bar.__dict__, key


def _micros(moment: Any) -> int:
    naive = moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
    delta = naive - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _bar(spark: Any, lane: Any, interval: str, symbol: str) -> dict[str, Any] | None:
    """The one bar of ``symbol`` in the interval's table, or None."""
    table = lane.table(f"gold.ohlcv_{interval}")
    found = [r for r in rows(spark, table) if r["symbol"] == symbol]
    assert len(found) <= 1
    return found[0] if found else None


def _counted(spark: Any, lane: Any, interval: str, trades: int) -> bool:
    bar = _bar(spark, lane, interval, "BTC/USD")
    return bar is not None and bar["trade_count"] == trades


def test_a_late_duplicate_is_still_one_row_and_a_late_trade_revises_every_bar(
    spark: Any, settings: Settings, stack: Any, tmp_path: Path
) -> None:
    """A trade re-sent hours later is still one row in Gold, and a late earlier trade revises every
    bar it belongs to, ordered by time then trade id."""
    lane = make_lane(settings, tmp_path, "late", exchanges=("kraken",))
    producer = RawProducer(lane)
    minute = T0 + 3_600_000_000  # 01:00:00
    # Two trades share a time: ids 9 and 10 (numerically 9 first, though "10" < "9" as text).
    first = [
        kraken_v2("BTC/USD", 9, "100.5", "1", minute + 20_000_000, side="buy"),
        kraken_v2("BTC/USD", 10, "101.5", "2", minute + 20_000_000, side="sell"),
        kraken_v2("BTC/USD", 11, "99.5", "3", minute + 30_000_000, side="buy"),
    ]
    producer.send([to_record(t) for t in reversed(first)], "kraken")  # arrival order reversed
    gold = lane.table("gold.trades")
    with contextlib.contextmanager(running)(spark, lane):
        wait_until(lambda: _counted(spark, lane, "1d", 3), "the first bars, rolled up")
        bar = _bar(spark, lane, "1m", "BTC/USD")
        assert bar is not None
        assert (bar["open"], bar["close"]) == (Decimal("100.5"), Decimal("99.5"))
        assert (bar["first_trade_id"], bar["last_trade_id"]) == ("9", "11")
        hour_before = _bar(spark, lane, "1h", "BTC/USD")
        assert hour_before is not None

        # Three hours later: a backfill re-sends trade 10 and brings an earlier one, id 8.
        later = 3 * 3_600_000_000
        again = kraken_v2("BTC/USD", 10, "101.5", "2", minute + 20_000_000, minute + later, "sell")
        early = kraken_v2("BTC/USD", 8, "98.5", "4", minute + 5_000_000, minute + later, "sell")
        producer.send([to_record(again), to_record(early)], "kraken")
        wait_until(lambda: _counted(spark, lane, "1d", 4), "the late trade, rolled up")

    ids = [r["message_id"] for r in rows(spark, gold)]
    assert sorted(ids) == [f"kraken:BTC/USD:{i}" for i in (10, 11, 8, 9)]
    for interval in BAR_INTERVALS:
        bar = _bar(spark, lane, interval, "BTC/USD")
        assert bar is not None, interval
        assert bar["open"] == Decimal("98.5"), interval  # the late trade opens the bar
        assert bar["close"] == Decimal("99.5"), interval
        assert (bar["first_trade_id"], bar["last_trade_id"]) == ("8", "11"), interval
        assert bar["trade_count"] == 4 and bar["volume"] == Decimal(10), interval
        assert bar["sell_volume"] == Decimal(6) and bar["buy_volume"] == Decimal(4), interval
        expected_quote = Decimal("100.5") + Decimal("203") + Decimal("298.5") + Decimal("394")
        assert bar["quote_volume"] == expected_quote, interval
        assert bar["vwap"] == Decimal("99.6") and bar["low"] == Decimal("98.5"), interval
    revised = _bar(spark, lane, "1h", "BTC/USD")
    assert revised is not None and revised["updated_at"] > hour_before["updated_at"]


def test_gold_and_bars_read_the_same_in_pyiceberg_duckdb_and_spark(
    spark: Any, settings: Settings, stack: Any, tmp_path: Path
) -> None:
    """Gold and its bars read the same in Spark, pyiceberg and DuckDB, decimals as plain text."""
    lane = make_lane(settings, tmp_path, "readers", exchanges=("binance",))
    RawProducer(lane).send([to_record(_binance(i)) for i in range(40)], "binance")
    gold = lane.table("gold.trades")
    with contextlib.contextmanager(running)(spark, lane):
        wait_until(lambda: count(spark, gold) >= 40, "Gold")

    catalog = open_catalog(lane.settings.lake_access())
    for table, key in (("gold.trades", "message_id"), ("gold.ohlcv_1m", "bar_start")):
        identifier = f"{lane.settings.lake.namespace_prefix}{table}"
        columns = ["price", "quantity", "quote_quantity"] if key == "message_id" else [
            "open", "high", "low", "close", "volume", "quote_volume", "vwap"
        ]  # fmt: skip
        through_spark = sorted(
            tuple(_text(r[c]) for c in (key, *columns)) for r in rows(spark, lane.table(table))
        )
        arrow = catalog.load_table(identifier).scan().to_arrow().to_pylist()
        through_pyiceberg = sorted(tuple(_text(r[c]) for c in (key, *columns)) for r in arrow)
        con = duckdb_connect(lane.settings.lake)
        scan = duckdb_scan_sql(lane.settings.lake_access(), identifier)
        fetched = con.execute(f"SELECT {key}, {', '.join(columns)} FROM {scan}").fetchall()
        through_duckdb = sorted(tuple(_text(v) for v in r) for r in fetched)
        assert through_spark == through_pyiceberg == through_duckdb, table
        assert all("e" not in value.lower() for row in through_duckdb for value in row[1:])


def _text(value: Any) -> str:
    """A value as text, times as µs since the epoch (readers differ only in time zone display)."""
    return str(_micros(value)) if isinstance(value, datetime) else str(value)


_WRITE_TIMES = {"silver_written_at", "gold_written_at", "quarantined_at", "updated_at"}


def _contents(spark: Any, lane: Any) -> dict[str, list[tuple[str, ...]]]:
    """Every Silver, quarantine, Gold and bar row of a lane, write times left out."""
    tables = [
        "silver.kraken_trades",
        "silver.binance_trades",
        "silver.quarantine",
        "gold.trades",
        *(f"gold.ohlcv_{interval}" for interval in BAR_INTERVALS),
    ]
    out = {}
    for table in tables:
        out[table] = sorted(
            tuple(_text(value) for name, value in sorted(row.items()) if name not in _WRITE_TIMES)
            for row in rows(spark, lane.table(table))
        )
    return out


def test_a_rebuild_from_bronze_gives_the_streamed_rows(
    spark: Any, settings: Settings, stack: Any, tmp_path: Path
) -> None:
    """Rebuilding Silver, Gold and the bars from Bronze, whole or one hour at a time, gives exactly
    the streamed rows, and is refused while a writer holds the lock."""
    lane = make_lane(settings, tmp_path, "rebuild")
    producer = RawProducer(lane)
    kraken = [_kraken(i) for i in range(40)]
    producer.send([to_record(t) for t in kraken + kraken[30:]], "kraken")  # with re-sent ones
    producer.send([to_record(_kraken(99), side="hold")], "kraken")
    producer.send([to_record(_binance(i)) for i in range(30)], "binance")
    with contextlib.contextmanager(running)(spark, lane) as (_, writer):
        wait_until(
            lambda: count(spark, lane.table("gold.trades")) >= 70
            and count(spark, lane.table("silver.quarantine")) >= 1,
            "every layer",
        )
    writer.rollup()
    streamed = _contents(spark, lane)
    assert len(streamed["gold.trades"]) == 70 and len(streamed["silver.kraken_trades"]) == 50

    lock = writer_lock(
        lane.settings.lake_access(),
        lane.settings.stack.state_dir,
        lane.settings.stream.writer_lease_s,
        lane.layout,
        "k2 job stream",
    )
    with lock, pytest.raises(WriterBusyError):
        rebuild(spark, lane.settings, "gold")
    for layer in ("silver", "gold", "bars"):
        rebuild(spark, lane.settings, layer)  # type: ignore[arg-type]
    assert _contents(spark, lane) == streamed
    # An hour of Gold and its bars rebuilt alone give the same rows too.
    hour = Window(T0, T0 + 3_600_000_000)
    rebuild(spark, lane.settings, "gold", ["kraken"], hour)
    rebuild(spark, lane.settings, "bars", ["kraken"], hour)
    assert _contents(spark, lane) == streamed


def test_maintenance_of_every_table_while_the_stream_writes_changes_no_row(
    spark: Any, settings: Settings, stack: Any, tmp_path: Path
) -> None:
    """Maintenance of every table while the stream keeps writing changes no row: Gold keeps one row
    per trade and the bars still match its trades."""
    lane = make_lane(settings, tmp_path, "upkeep", exchanges=("kraken",))
    producer = RawProducer(lane)
    gold = lane.table("gold.trades")
    done = threading.Event()

    def trickle() -> None:  # trades keep revising the same bars while maintenance runs
        for i in range(400, 700, 20):
            producer.send([to_record(_kraken(j)) for j in range(i, i + 20)], "kraken")
            if done.wait(0.3):
                return

    with contextlib.contextmanager(running)(spark, lane):
        for start in range(0, 200, 50):  # four micro-batches of small files first
            producer.send([to_record(_kraken(j)) for j in range(start, start + 50)], "kraken")
            wait_until(lambda n=start + 50: count(spark, gold) >= n, "a batch in Gold")
        writer = threading.Thread(target=trickle)
        writer.start()
        config = MaintenanceSettings(snapshot_retention_hours=0, retain_last=1, min_input_files=2)
        tables = maintained_tables(lane.settings.lake_access())
        assert any(t.endswith("ohlcv_1m") for t in tables) and len(tables) >= 14
        reports = maintain(spark, lane.settings.lake_access(), config, tables)
        done.set()
        writer.join()
        wait_until(lambda: count(spark, gold) >= 500, "the trickled trades")

    by_table = {r.table: r for r in reports}
    assert by_table[f"{lane.settings.lake.namespace_prefix}gold.trades"].files_after >= 1
    trades = rows(spark, gold)
    ids = [r["message_id"] for r in trades]
    assert len(ids) == len(set(ids)) == 500
    bars = expected_bars(
        (
            (r["exchange"], r["symbol"], _micros(r["exchange_ts"]), r["trade_id"], r["price"],
             r["quantity"], r["side"])
            for r in trades
        ),
        BAR_INTERVALS["1m"],
    )  # fmt: skip
    stored = {
        (r["exchange"], r["symbol"], _micros(r["bar_start"])): r
        for r in rows(spark, lane.table("gold.ohlcv_1m"))
    }
    assert set(stored) == set(bars)
    for key, bar in bars.items():
        assert {name: stored[key][name] for name in bar.__dataclass_fields__} == bar.__dict__


def test_a_frame_kept_for_a_batch_is_read_without_its_lineage_and_freed_after(spark: Any) -> None:
    """A frame the job reads several times in a batch is computed once; in local mode later reads
    no longer carry the steps that made it (the per-task cost that grew with every exchange),
    and its blocks are gone once the batch releases it, so memory does not grow batch by batch."""
    made = spark.range(5_000).selectExpr("id", "cast(id * 3 AS decimal(38,18)) AS price")
    frame = kept(made.where("id % 7 <> 0"))
    persistent = spark.sparkContext._jsc.getPersistentRDDs
    assert frame.count() == 4_285
    held = frame._jdf.queryExecution().analyzed().rdd()
    assert held.isCheckpointed()
    lineage = held.toDebugString()
    assert "LocalCheckpointRDD" in lineage
    assert "ParallelCollectionRDD" not in lineage  # spark.range's own RDD: the lineage is cut
    assert frame.where("id < 70").count() == 60
    assert persistent().containsKey(held.id())
    release(frame)
    assert not persistent().containsKey(held.id())


def test_only_records_past_a_tables_marker_are_new_to_it(spark: Any) -> None:
    """A table takes only the records past its marker, per topic and partition; a topic or
    partition the marker does not name is new from its first record."""
    frame = spark.createDataFrame(
        [
            (topic, partition, offset)
            for topic in ("a.raw", "b'raw")
            for partition in (0, 1)
            for offset in range(5)
        ],
        "kafka_topic string, kafka_partition int, kafka_offset bigint",
    )
    settled = {"a.raw": {0: 2, 1: 4}, "b'raw": {0: 0}}
    fresh = {
        (r.kafka_topic, r.kafka_partition, r.kafka_offset)
        for r in frame.where(above(settled)).collect()
    }
    assert fresh == {
        *(("a.raw", 0, o) for o in (3, 4)),
        *(("b'raw", 0, o) for o in range(1, 5)),
        *(("b'raw", 1, o) for o in range(5)),
    }
    assert frame.where(above({})).count() == 20
