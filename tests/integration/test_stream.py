"""The streaming job against the real broker, registry, Spark and Iceberg: every layer, once.

Each test runs the job over its own topics and tables (a :class:`Lane`), with half-second
triggers; waits poll the tables with a deadline.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from k2.config import Settings
from k2.domain import BAR_INTERVALS

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
    from datetime import UTC, datetime

    naive = moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
    delta = naive - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
