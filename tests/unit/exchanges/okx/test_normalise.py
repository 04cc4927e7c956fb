"""OKX rows become unified trades: the taker's side, exact decimals, µs times and message ids
that are the same for the live row and the REST row; a record read back normalises the same."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from k2.config import IngestSettings
from k2.domain import micros_from_datetime
from k2.errors import TradeInvalidError
from k2.exchanges.base import Envelope, FieldValue, RawTrade
from k2.exchanges.factory import adapter_for
from k2.exchanges.okx import wire
from k2.exchanges.okx.normalise import normalise_trade, split_symbol, trade_from_record
from k2.exchanges.okx.parse import trade_key

from .strategies import trade_fields

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def raw(protocol: str = "okx-trades-all", **changes: FieldValue) -> RawTrade:
    fields = {**wire.trade_fields("BTC-USDT", 7, "42219.9", "0.12060306", "buy", 1630048897897),
              "channel": "trades-all", **changes}  # fmt: skip
    symbol = str(fields["instId"])
    key = trade_key(str(fields["tradeId"]))
    return RawTrade("okx", symbol, key, fields, Envelope(1_630_048_897_999_000, "c", 0, protocol))


def record(trade: RawTrade) -> dict[str, Any]:
    adapter = adapter_for("okx", IngestSettings())
    return adapter.to_record(trade, adapter.message_id(trade), "0.1.0")


def test_side_is_the_takers_as_okx_sends_it() -> None:
    """OKX documents ``side`` as the taker's: a buy is a buy, a sell a sell."""
    assert normalise_trade(raw(side="buy")).side == "buy"
    assert normalise_trade(raw(side="sell")).side == "sell"


def test_values_are_exact_and_times_are_milliseconds() -> None:
    """An OKX trade keeps its exact price and quantity, an exact quote quantity, and its millisecond
    exchange time."""
    trade = normalise_trade(raw())
    assert str(trade.price) == "42219.9" and str(trade.quantity) == "0.12060306"
    assert str(trade.quote_quantity) == "5091.849132894"
    assert micros_from_datetime(trade.exchange_ts) == 1_630_048_897_897_000
    assert micros_from_datetime(trade.received_ts) == 1_630_048_897_999_000
    assert (trade.order_type, trade.exchange_symbol, trade.trade_id) == (None, "BTC-USDT", "7")


def test_a_live_row_and_its_rest_row_share_the_message_id() -> None:
    """A trade received live and the same trade read from OKX's REST history share one message_id,
    so Gold keeps it once."""
    live = normalise_trade(raw())
    rest_fields = {k: v for k, v in raw().fields.items() if k != "channel"}
    rest = RawTrade("okx", "BTC-USDT", 7, rest_fields, Envelope(1, "rest", 0, "okx-rest"))
    assert normalise_trade(rest).message_id == live.message_id == "okx:BTC-USDT:7"


def test_only_spot_names_split() -> None:
    """Only spot instrument names split into base and quote; swaps and names without a dash do
    not."""
    assert split_symbol("BTC-USDT") == ("BTC", "USDT")
    assert split_symbol("BTC-USDT-SWAP") is None and split_symbol("BTCUSDT") is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"instId": "BTC-USDT-SWAP"}, "symbol"),
        ({"px": "1e5"}, "price"),
        ({"sz": "-1"}, "quantity"),
        ({"side": "hold"}, "side"),
        ({"ts": "1630048897.897"}, "time"),
        ({"ts": "9" * 30}, "time"),
        ({"tradeId": "007"}, "trade_id"),
        ({"count": "3"}, "count"),
    ],
)
def test_unreadable_values_raise_with_a_reason(changes: dict[str, FieldValue], reason: str) -> None:
    """An OKX row with a value K2 cannot read exactly (a swap, an exponent, a negative size, an
    unknown side, a bad time or id, an aggregated count) is refused with its reason."""
    with pytest.raises(TradeInvalidError) as caught:
        normalise_trade(raw(**changes))
    assert caught.value.reason == reason


@SETTINGS
@given(fields=trade_fields())
def test_a_record_normalises_like_its_trade(fields: dict[str, FieldValue]) -> None:
    """The raw record the ingest writes reads back to the same unified trade."""
    key = trade_key(str(fields["tradeId"]))
    envelope = Envelope(1_700_000_000_000_000, "c", 1, "okx-trades-all")
    trade = RawTrade(
        "okx", str(fields["instId"]), key, {**fields, "channel": "trades-all"}, envelope
    )
    assert trade_from_record(record(trade)) == normalise_trade(trade)
