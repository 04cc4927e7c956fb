"""Order book records through the streaming job: Bronze keeps every book message as sent.

Book records go to ``market.crypto.books.<exchange>.raw`` when the exchange's books are captured;
the streaming job then reads that topic beside the trades and appends each record, levels and
verdict as sent, to ``bronze.<exchange>_books`` once, through a restart of the query.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from k2.config import Settings

from .lanes import RawProducer, count, kraken_v2, make_lane, rows, running, to_record, wait_until

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
    }


def test_every_book_message_lands_once_in_bronze_as_sent_beside_the_trades(
    spark: Any, settings: Settings, stack: Any, tmp_path: Path
) -> None:
    """With Kraken's books captured the job reads its book topic too: each record is one row of
    ``bronze.kraken_books`` with its levels (strings as sent), numbers and verdict, and a record
    that cannot be decoded is a reject; the trades still reach Gold; a restarted query adds
    only the new records."""
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
            and count(spark, lane.table("bronze.kraken_books_rejects")) >= 1
            and count(spark, lane.table("gold.trades")) >= 5,
            "the book records, the reject and the trades",
        )
    second = [book_record(i, "BTC/USD") for i in range(40, 55)]
    producer.send(second, "kraken_books")
    with contextlib.contextmanager(running)(spark, lane):
        wait_until(lambda: count(spark, books) >= 55, "the records sent while stopped")

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
