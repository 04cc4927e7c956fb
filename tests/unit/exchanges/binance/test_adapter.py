"""The Binance adapter's raw records name every payload letter as sent, and say where to resume."""

from __future__ import annotations

from typing import Any

import pytest

from k2.exchanges.base import Envelope
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.binance.adapter import BinanceAdapter
from k2.exchanges.binance.config import BinanceSettings
from k2.exchanges.binance.parse import parse_frame as parse_binance
from tests.unit.exchanges.records import round_trip

US = 1_718_000_000_123_456


def envelope(protocol: Any) -> Envelope:
    return Envelope(US, "c1", 7, protocol)


@pytest.mark.parametrize("stream", ["trade", "aggTrade"])
def test_binance_record_names_every_payload_letter(stream: Any) -> None:
    """A Binance trade's raw record names every payload letter as sent and resumes only the id
    sequence of the stream it came from."""
    if stream == "trade":
        fields = binance_wire.trade_fields("BTCUSDT", 7, "0.00100000", "2.5", US, True)
        frame = binance_wire.render_trade(fields, "btcusdt@trade")
    else:
        fields = binance_wire.agg_trade_fields("BTCUSDT", 9, "0.001", "2.5", 3, 5, US, False)
        frame = binance_wire.render_agg_trade(fields, "btcusdt@aggTrade")
    (trade,) = parse_binance(frame, envelope("binance-trade")).trades
    adapter = BinanceAdapter(BinanceSettings(stream=stream))
    record = round_trip("binance_raw", adapter.to_record(trade, adapter.message_id(trade), "t"))
    assert record["price"] == fields["p"] and record["quantity"] == "2.5"
    assert record["trade_time"] == US and record["time_unit"] == "MICROSECOND"
    assert record["stream"] == f"btcusdt@{stream}"
    expected_id = 7 if stream == "trade" else 9
    assert adapter.record_trade_id(record) == expected_id
    assert adapter.record_exchange_us(record) == US
    other = BinanceAdapter(BinanceSettings(stream="aggTrade" if stream == "trade" else "trade"))
    assert other.record_trade_id(record) is None  # another id sequence is no resume point
