"""Bybit raw trades normalise to the unified trade: the taker's side, exact decimals, µs UTC,
a deterministic message_id, and the same trade from the raw record as from the frame."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given

from k2.domain import micros_from_datetime
from k2.errors import TradeInvalidError
from k2.exchanges.base import Envelope, FieldValue, RawTrade
from k2.exchanges.bybit.adapter import BybitAdapter
from k2.exchanges.bybit.config import BybitSettings
from k2.exchanges.bybit.normalise import normalise_trade, split_symbol, trade_from_record
from k2.exchanges.bybit.parse import parse_frame

from .strategies import trade_fields
from .test_parse import DOC_TRADE, ENVELOPE, SPOT_CAPTURE

ADAPTER = BybitAdapter(BybitSettings())


def test_side_is_the_takers() -> None:
    """S is the taker's side (documented "Side of taker"): Buy is a buy, Sell a sell."""
    (buy,) = parse_frame(SPOT_CAPTURE, ENVELOPE).trades
    (sell,) = parse_frame(SPOT_CAPTURE.replace('"S":"Buy"', '"S":"Sell"'), ENVELOPE).trades
    assert normalise_trade(buy).side == "buy"
    assert normalise_trade(sell).side == "sell"


def test_the_spot_capture_normalises_exactly() -> None:
    """The captured spot trade: exact price, size and product, ms time in µs, its message_id."""
    (raw,) = parse_frame(SPOT_CAPTURE, ENVELOPE).trades
    trade = normalise_trade(raw)
    assert trade.message_id == "bybit:BTCUSDT:2290000001202469355"
    assert (trade.symbol, trade.base, trade.quote) == ("BTC/USDT", "BTC", "USDT")
    assert trade.price == Decimal("77606.8") and trade.quantity == Decimal("0.000712")
    assert trade.quote_quantity == Decimal("55.2560416")
    assert micros_from_datetime(trade.exchange_ts) == 1_788_335_009_482_000
    assert trade.trade_id == "2290000001202469355" and trade.order_type is None


def test_the_documented_example_keeps_its_id_as_sent() -> None:
    """A UUID id (linear's) is kept as sent in the trade id and the message_id."""
    (raw,) = parse_frame(DOC_TRADE, ENVELOPE).trades
    trade = normalise_trade(raw)
    assert trade.message_id == "bybit:BTCUSDT:20f43950-d8dd-5b31-9112-a178eb6023af"
    assert trade.price == Decimal("16578.50")


def test_symbols_split_by_reference_data_else_by_the_longest_quote() -> None:
    """Base and quote come from instruments-info when known, else the longest quote suffix."""
    assert split_symbol("ETHBTC") == ("ETH", "BTC")
    assert split_symbol("BTCFDUSD") == ("BTC", "FDUSD")
    assert split_symbol("USDT") is None
    (raw,) = parse_frame(SPOT_CAPTURE, ENVELOPE).trades
    assert normalise_trade(raw, {"BTCUSDT": ("XBT", "USDT")}).symbol == "BTC/USDT"


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"S": "buy"}, "side"), ({"p": "1e5"}, "p"), ({"v": "-1"}, "v"), ({"T": -1}, "time"),
     ({"T": 2**62}, "time"), ({"i": ""}, "trade_id"), ({"s": "NOQUOTE"}, "symbol")],
)  # fmt: skip
def test_values_bybit_never_sends_are_refused_with_a_reason(
    change: dict[str, FieldValue], reason: str
) -> None:
    """An odd value is a TradeInvalidError with its reason, never a wrong trade."""
    (raw,) = parse_frame(SPOT_CAPTURE, ENVELOPE).trades
    fields = {**raw.fields, **change}
    odd = raw._replace(fields=fields, native_symbol=str(fields["s"]))
    with pytest.raises(TradeInvalidError) as caught:
        normalise_trade(odd)
    assert caught.value.reason == reason


@given(fields=trade_fields())
def test_a_record_normalises_like_its_trade(fields: dict[str, FieldValue]) -> None:
    """The raw Avro record of any trade normalises to the trade its frame normalises to."""
    raw = RawTrade("bybit", str(fields["s"]), None, fields, Envelope(10**15, "c", 3, "bybit-spot"))
    record = ADAPTER.to_record(raw, ADAPTER.message_id(raw), "test")
    assert trade_from_record(record) == normalise_trade(raw)
    assert record["trade_id"] == fields["i"] and record["side"] == fields["S"]
