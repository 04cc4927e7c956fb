"""The Kraken adapter's raw records keep the exact text Kraken sent, from v1, v2 and REST alike,
and say where to resume."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from k2.exchanges.base import Envelope
from k2.exchanges.kraken import wire as kraken_wire
from k2.exchanges.kraken.adapter import KrakenAdapter, _rest_trade
from k2.exchanges.kraken.config import KrakenSettings
from k2.exchanges.kraken.normalise import normalise_trade as normalise_kraken
from k2.exchanges.kraken.parse import parse_frame as parse_kraken
from tests.unit.exchanges.records import round_trip

US = 1_718_000_000_123_456


def envelope(protocol: Any) -> Envelope:
    return Envelope(US, "c1", 7, protocol)


def test_kraken_v2_trade_record_keeps_the_exact_text() -> None:
    """A Kraken v2 trade's raw record keeps its price and quantity text exactly, and gives back its
    id and exchange time as the resume point."""
    frame = kraken_wire.render_v2_trades(
        [
            kraken_wire.v2_trade_fields(
                "BTC/USD",
                "buy",
                "65000.10",
                "0.00000001",
                "limit",
                42,
                kraken_wire.format_timestamp_v2(US),
            )
        ],
        "update",
    )
    (trade,) = parse_kraken(frame, envelope("kraken-v2")).trades
    adapter = KrakenAdapter(KrakenSettings())
    record = round_trip("kraken_raw", adapter.to_record(trade, adapter.message_id(trade), "t"))
    assert record["price"] == "65000.10" and record["qty"] == "0.00000001"
    assert record["trade_id"] == 42 and record["protocol"] == "kraken-v2"
    assert record["message_id"] == "kraken:BTC/USD:42"
    assert adapter.record_trade_id(record) == 42
    assert adapter.record_exchange_us(record) == adapter.exchange_us(trade) == US


def test_kraken_v1_trade_record_has_no_id_and_its_exact_time() -> None:
    """A Kraken v1 trade's raw record has no trade id and keeps Kraken's time text to the
    microsecond."""
    time_text = kraken_wire.format_time_v1(US)
    fields = kraken_wire.v1_trade_fields("5541.20000", "0.15850568", time_text, "s", "l")
    frame = kraken_wire.render_v1_trades(42, "XBT/USD", [fields])
    (trade,) = parse_kraken(frame, envelope("kraken-v1")).trades
    adapter = KrakenAdapter(KrakenSettings(protocol="kraken-v1"))
    record = round_trip("kraken_raw", adapter.to_record(trade, adapter.message_id(trade), "t"))
    assert record["trade_id"] is None and record["time"] == "1718000000.123456"
    assert record["message_id"].startswith("kraken:XBT/USD:")
    assert adapter.record_trade_id(record) is None
    assert adapter.record_exchange_us(record) == US


def test_kraken_rest_row_is_the_same_trade_as_v2() -> None:
    """A trade recovered from Kraken's REST history is the same trade, with the same message_id, as
    it would be from the v2 feed."""
    row = ["65000.10000", "0.00000001", Decimal("1718000000.123456"), "b", "l", "", 42]
    trade = _rest_trade("BTC/USD", row, US, 0)
    adapter = KrakenAdapter(KrakenSettings())
    assert adapter.message_id(trade) == "kraken:BTC/USD:42"
    assert trade.envelope.protocol == "kraken-rest"
    normalised = normalise_kraken(trade)
    assert normalised.price == Decimal("65000.1") and normalised.side == "buy"
    assert normalised.trade_id == "42"
    record = round_trip("kraken_raw", adapter.to_record(trade, adapter.message_id(trade), "t"))
    assert record["time"] == "1718000000.123456" and record["connection_id"] == "rest"
    assert adapter.record_exchange_us(record) == US
