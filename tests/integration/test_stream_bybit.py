"""Bybit through every layer of the streaming job, from the registry alone: raw records in
Kafka become Bronze rows as sent, Silver rows with the taker's side and exact decimals, one Gold
row per message_id and bars, with an invalid trade quarantined."""

from __future__ import annotations

import contextlib
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from k2.config import Settings
from k2.exchanges.base import Envelope, RawTrade
from k2.exchanges.bybit import wire

from .lanes import RawProducer, count, make_lane, rows, running, to_record, wait_until

pytestmark = pytest.mark.integration

T0_MS = 1_764_547_200_000  # 2025-12-01T00:00:00Z


def _trade(i: int) -> RawTrade:
    symbol = ("BTCUSDT", "ETHUSDT")[i % 2]
    fields = wire.trade_fields(
        symbol, str(2290000001202469000 + 7 * i), f"{77000 + i}.{i % 10}", f"0.{i + 1:06d}",
        T0_MS + i * 4_000, "Buy" if i % 3 else "Sell", 113508069000 + i,
    )  # fmt: skip
    at = (T0_MS + i * 4_000) * 1000 + 1_000
    return RawTrade("bybit", symbol, None, fields, Envelope(at, "conn", i, "bybit-spot"))


def test_bybit_trades_reach_every_layer_once(
    spark: Any, settings: Settings, stack: Any, tmp_path: Path
) -> None:
    """Bybit records are in Bronze as sent, in Silver and Gold once each with the taker's
    side and exact values, duplicates collapse, bars count them, and a bad side is
    quarantined."""
    lane = make_lane(settings, tmp_path, "bybit", exchanges=("bybit",))
    trades = [_trade(i) for i in range(60)]
    records = [to_record(t) for t in trades]
    producer = RawProducer(lane)
    producer.send([*records, *records[10:20], to_record(_trade(99), side="Hold")], "bybit")

    with contextlib.contextmanager(running)(spark, lane):
        wait_until(
            lambda: count(spark, lane.table("gold.trades")) >= 60
            and count(spark, lane.table("silver.quarantine")) >= 1
            and count(spark, lane.table("gold.ohlcv_1m")) >= 1,
            "gold, the bars and the quarantine",
        )

    assert count(spark, lane.table("bronze.bybit_trades")) == 71
    bronze = {r["message_id"]: r for r in rows(spark, lane.table("bronze.bybit_trades"))}
    gold = rows(spark, lane.table("gold.trades"))
    assert max(Counter(r["message_id"] for r in gold).values()) == 1 and len(gold) == 60
    by_id = {r["message_id"]: r for r in gold}
    for raw in trades:
        message_id = f"bybit:{raw.native_symbol}:{raw.fields['i']}"
        row, sent = by_id[message_id], bronze[message_id]
        assert (sent["price"], sent["size"], sent["side"]) == (
            raw.fields["p"], raw.fields["v"], raw.fields["S"],
        )  # fmt: skip
        assert row["side"] == str(raw.fields["S"]).lower()  # the taker's
        assert row["price"] == Decimal(str(raw.fields["p"]))
        assert row["quantity"] == Decimal(str(raw.fields["v"]))
        assert row["quote_quantity"] == row["price"] * row["quantity"]
        assert row["symbol"] == raw.native_symbol[:3] + "/USDT" and row["exchange"] == "bybit"
    (bad,) = rows(spark, lane.table("silver.quarantine"))
    assert list(bad["reasons"]) == ["side_unknown"]
    bars = rows(spark, lane.table("gold.ohlcv_1m"))
    assert sum(bar["trade_count"] for bar in bars) == 60
