"""Order book records through the streaming job: Bronze keeps every book message as sent, Silver
has one row per level.

Book records go to ``market.crypto.books.<exchange>.raw`` when the exchange's books are captured;
the streaming job then reads that topic beside the trades, appends each record, levels and
verdict as sent, to ``bronze.<exchange>_books`` once, and each of its levels to
``silver.book_changes`` (a level that is not an exact decimal to ``silver.quarantine``), through
a restart of the query.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from k2.config import Settings
from k2.domain import datetime_from_micros
from k2.exchanges.book import Level, OrderBook
from k2.exchanges.bookfeed import BookFeed
from k2.exchanges.kraken.book import checksum as kraken_checksum
from k2.exchanges.kraken.bookfeed import KrakenBookFeed
from k2.exchanges.kraken.client import KrakenFeedOptions
from k2.lake.books import book_at
from k2.lake.query import LakeViews, quoted_name
from k2.simulator.faults import FaultRule
from k2.simulator.server import Simulator

from .lanes import RawProducer, count, kraken_v2, make_lane, rows, running, to_record, wait_until
from .test_ingest_books import capture_until_resyncs
from .test_simulator_kraken import config as kraken_config

pytestmark = pytest.mark.integration

T0 = 1_764_547_200_000_000  # 2025-12-01T00:00:00Z, µs


def book_record(i: int, symbol: str, snapshot: bool = False) -> dict[str, Any]:
    """A Kraken v2 book message as the book capture writes it."""
    bids = [{"price": f"{60000 - i}.{i % 10}0", "size": f"0.{i + 1:08d}"}]
    asks = [{"price": f"{60001 + i}.50", "size": "0"}, {"price": "1e-8", "size": "2.5"}]
    return {
        "exchange": "kraken",
        "exchange_symbol": symbol,
        "snapshot": snapshot,
        "bids": bids,
        "asks": asks,
        "exchange_us": T0 + i * 100_000,
        "sequence": None,
        "sequence_from": None,
        "checksum": 4_000_000_000 + i,
        "verified": i % 5 != 3,
        "outcome": "verified" if i % 5 != 3 else "unverified",
        "reason": None if i % 5 != 3 else "checksum_mismatch",
        "expected": None,
        "received": None,
        "received_us": T0 + i * 100_000 + 2_000,
        "connection_id": "conn-test",
        "position": i,
        "protocol": "kraken-v2",
        "message_id": f"kraken:{symbol}:book:conn-test:{i}",
        "k2_version": "test",
        "depth": 10,
    }


def _text_level(level: dict[str, str]) -> Level:
    return Level(Decimal(level["price"]), Decimal(level["size"]), level["price"], level["size"])


def _us(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return round((aware - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)


def test_every_book_message_lands_once_in_bronze_as_sent_and_each_level_in_silver(
    spark: Any, settings: Settings, stack: Any, tmp_path: Path
) -> None:
    """With Kraken's books captured the job reads its book topic too: each record is one row of
    ``bronze.kraken_books`` with its levels (strings as sent), numbers and verdict, and a record
    that cannot be decoded is a reject; each valid level is one row of ``silver.book_changes``
    with exact decimals, and a level that is not decimal text is quarantined with its reason;
    the trades still reach Gold; a restarted query adds only the new records."""
    lane = make_lane(settings, tmp_path, "books", exchanges=("kraken",), books=("kraken",))
    assert [s.table for s in lane.layout.sources if s.kind == "books"] == [
        f"{lane.settings.lake.namespace_prefix}bronze.kraken_books"
    ]
    producer = RawProducer(lane)
    first = [book_record(i, ("BTC/USD", "ETH/USD")[i % 2], snapshot=i < 2) for i in range(40)]
    producer.send(first, "kraken_books")
    producer.send_raw("kraken_books", [b"not avro"])
    trades = [kraken_v2("BTC/USD", 100 + i, "60000.5", "0.01", T0 + i * 10**6) for i in range(5)]
    producer.send([to_record(t) for t in trades], "kraken")
    books = lane.table("bronze.kraken_books")

    with contextlib.contextmanager(running)(spark, lane):
        wait_until(
            lambda: count(spark, books) >= 40
            and count(spark, lane.table("silver.book_changes")) >= 80
            and count(spark, lane.table("bronze.kraken_books_rejects")) >= 1
            and count(spark, lane.table("gold.trades")) >= 5,
            "the book records, the reject and the trades",
        )
    second = [book_record(i, "BTC/USD") for i in range(40, 55)]
    producer.send(second, "kraken_books")
    with contextlib.contextmanager(running)(spark, lane):
        wait_until(
            lambda: count(spark, lane.table("silver.book_changes")) >= 110,
            "the records sent while stopped, in Silver",
        )

    stored = rows(spark, books)
    by_id = {row["message_id"]: row for row in stored}
    assert len(stored) == 55 == len(by_id)
    offsets = Counter((row["kafka_partition"], row["kafka_offset"]) for row in stored)
    assert max(offsets.values()) == 1
    for record in first + second:
        row = by_id[record["message_id"]]
        assert row["bids"] == record["bids"] and row["asks"] == record["asks"]
        for name in ("snapshot", "checksum", "verified", "outcome", "reason", "position"):
            assert row[name] == record[name], name
    assert count(spark, lane.table("bronze.kraken_books_rejects")) == 1
    assert count(spark, lane.table("gold.trades")) == 5
    assert count(spark, lane.table("bronze.kraken_trades")) == 5

    changes = rows(spark, lane.table("silver.book_changes"))
    assert len(changes) == 2 * 55
    assert len({(r["message_id"], r["side"], r["level"]) for r in changes}) == len(changes)
    for record in first + second:
        mine = sorted(
            (r for r in changes if r["message_id"] == record["message_id"]),
            key=lambda r: r["side"],
        )
        assert [(r["side"], r["level"]) for r in mine] == [("ask", 0), ("bid", 0)]
        ask, bid = mine
        assert (ask["price"], ask["size"]) == (Decimal(record["asks"][0]["price"]), Decimal(0))
        assert bid["price"] == Decimal(record["bids"][0]["price"])
        assert bid["size"] == Decimal(record["bids"][0]["size"])
        for row in mine:
            assert row["symbol"] == record["exchange_symbol"] and row["exchange"] == "kraken"
            assert row["is_snapshot"] == record["snapshot"] and row["depth"] == 10
            assert row["verified"] == record["verified"] and row["outcome"] == record["outcome"]
            assert _us(row["exchange_ts"]) == record["exchange_us"]
            assert _us(row["received_ts"]) == record["received_us"]
    quarantined = rows(spark, lane.table("silver.quarantine"))
    assert len(quarantined) == 55
    for row in quarantined:
        assert row["reasons"] == ["price_not_decimal"] and row["exchange"] == "kraken"
        raw = json.loads(row["raw"])
        assert (raw["side"], raw["level"], raw["price"], raw["size"]) == ("ask", 1, "1e-8", "2.5")


def test_the_book_at_any_instant_is_the_one_the_exchange_checksummed(
    spark: Any, settings: Settings, stack: Any, tmp_path: Path
) -> None:
    """Kraken's books captured from the simulator go through the job; ``k2 book``'s rebuild from
    ``silver.book_changes`` at the receive time of any message gives the book whose top 10 the
    exchange's checksum of that message vouches for (replayed here from the records as sent,
    the checksum checked after every message), best levels first, exact decimals."""
    lane = make_lane(settings, tmp_path, "bookat", exchanges=("kraken",), books=("kraken",))
    simulator = kraken_config(tmp_path, rate=200, kraken_symbols=("XBT/USD", "ETH/USD"))
    symbols = ("BTC/USD", "ETH/USD")

    def feed(sim: Simulator) -> BookFeed:
        options = KrakenFeedOptions(
            symbols=symbols, ws_url=sim.urls.kraken_v2, rest_url=sim.urls.kraken_rest,
            book_depth=10,
        )  # fmt: skip
        return KrakenBookFeed(options)

    quiet = FaultRule(protocol="kraken-v1")  # no fault on the v2 book the feed reads
    capture_until_resyncs(lane.settings, "kraken", feed, quiet, simulator, resyncs=0)
    books = lane.table("bronze.kraken_books")
    with contextlib.contextmanager(running)(spark, lane):
        wait_until(lambda: count(spark, books) >= 100, "the book records in Bronze")
        sent = count(spark, books)
        changes = lane.table("silver.book_changes")
        wait_until(
            lambda: spark.sql(f"SELECT count(DISTINCT message_id) AS n FROM {changes}")
            .collect()[0]
            .n
            >= sent,
            "every book record's levels in Silver",
        )

    views = LakeViews(lane.settings.lake_access())
    views.refresh()
    table = quoted_name(f"{lane.settings.lake.namespace_prefix}silver.book_changes")
    records = sorted(rows(spark, books), key=lambda r: (r["kafka_partition"], r["kafka_offset"]))
    for symbol in symbols:
        mine = [r for r in records if r["exchange_symbol"] == symbol]
        assert mine[0]["snapshot"] and all(r["verified"] for r in mine), symbol
        oracle = OrderBook(10)
        checked = 0
        for index, record in enumerate(mine):
            bids = [_text_level(level) for level in record["bids"]]
            asks = [_text_level(level) for level in record["asks"]]
            if record["snapshot"]:
                oracle.replace(bids, asks)
            else:
                oracle.update(bids, asks)
            top_bids, top_asks = oracle.top(10)
            assert kraken_checksum(top_bids, top_asks) == record["checksum"], record["message_id"]
            later = mine[index + 1] if index + 1 < len(mine) else None
            if later is not None and later["received_us"] == record["received_us"]:
                continue  # the instant holds the next message too
            at = datetime_from_micros(_us(record["received_us"]))
            got = book_at(views.connection, table, "kraken", symbol, at, 10)
            assert got.bids == [(level.price, level.size) for level in top_bids], (symbol, index)
            assert got.asks == [(level.price, level.size) for level in top_asks], (symbol, index)
            assert got.verified and got.messages == index + 1
            checked += 1
        assert checked >= 20
