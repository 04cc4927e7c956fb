"""Coinbase trades become unified trades exactly: the taker's side (the other of the maker's
side Coinbase sends) from either protocol, exact
decimals, µs times, one message_id per trade whichever way it arrived."""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Any

import pytest
from hypothesis import given, settings

from k2.domain import micros_from_datetime
from k2.errors import TradeInvalidError
from k2.exchanges.base import Envelope, FieldValue, RawTrade
from k2.exchanges.coinbase import wire
from k2.exchanges.coinbase.adapter import CoinbaseAdapter
from k2.exchanges.coinbase.config import CoinbaseSettings
from k2.exchanges.coinbase.normalise import normalise_trade, raw_from_record, trade_from_record
from k2.exchanges.coinbase.parse import parse_frame
from k2.exchanges.values import rfc3339_micros

from .strategies import as_market_trade, recorded_matches, trade_fields

SOCKET = Envelope(1_700_000_000_000_000, "conn", 0, "coinbase-advanced")
HISTORY = Envelope(1_700_000_000_000_000, "rest", 0, "coinbase-rest")
ADAPTER = CoinbaseAdapter(CoinbaseSettings())


def socket_trade(fields: dict[str, FieldValue]) -> RawTrade:
    text = wire.render_market_trades([fields], "update", 1, "2024-01-01T00:00:00Z")
    (trade,) = parse_frame(text, SOCKET).trades
    return trade


def history_trade(match: dict[str, Any]) -> RawTrade:
    """A recorded ``match`` as the history serves the same trade: the same fields (the id a JSON
    integer, the side the maker's) as the adapter turns a history row into a raw trade."""
    fields: dict[str, FieldValue] = {
        "trade_id": str(match["trade_id"]),
        "product_id": match["product_id"],
        **{name: match[name] for name in ("price", "size", "side", "time")},
    }
    return RawTrade("coinbase", match["product_id"], match["trade_id"], fields, HISTORY)


def test_silver_side_is_the_takers_for_recorded_trades_from_either_protocol() -> None:
    """The recorded feed names the maker's side, and so do the history and market_trades: each
    is turned over to the taker's, and the same trade from either agrees."""
    for match in recorded_matches():
        taker = "sell" if match["side"] == "buy" else "buy"
        from_history = normalise_trade(history_trade(match))
        from_socket = normalise_trade(socket_trade(as_market_trade(match)))
        assert from_history.side == from_socket.side == taker
        assert from_history.message_id == from_socket.message_id
        assert from_history.price == Decimal(match["price"])
        assert from_history.quantity == Decimal(match["size"])
        assert from_history.symbol == "/".join(match["product_id"].split("-"))


def test_the_documented_buy_is_a_taker_sell_with_exact_values() -> None:
    """The documentation example: ETH/USD, maker buy (a taker sell), 1260.01 × 0.3 = 378.003
    exactly."""
    fields = wire.trade_fields("000000000", "ETH-USD", "1260.01", "0.3", "BUY",
                               "2019-08-14T20:42:27.265Z")  # fmt: skip
    trade = normalise_trade(socket_trade(fields))
    assert (trade.symbol, trade.base, trade.quote, trade.side) == ("ETH/USD", "ETH", "USD", "sell")
    assert trade.quote_quantity == Decimal("378.003") and trade.order_type is None
    assert trade.trade_id == "0" and trade.message_id == "coinbase:ETH-USD:0"
    assert micros_from_datetime(trade.exchange_ts) == 1_565_815_347_265_000


def test_nanosecond_times_are_cut_to_the_microsecond() -> None:
    """Coinbase sends up to nine fraction digits; K2 keeps µs and never rounds up."""
    assert rfc3339_micros("2023-01-18T01:37:38.091377999Z", "t") == 1_674_005_858_091_377
    assert rfc3339_micros("2023-01-18T01:37:38Z", "t") == 1_674_005_858_000_000


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"side": "buy"}, "side"),  # the socket sends upper case
        ({"price": "1e3"}, "price"),
        ({"size": "-1"}, "quantity"),
        ({"time": "2023-01-18 01:37:38Z"}, "time"),
        ({"product_id": "BTCUSD"}, "symbol"),
    ],
)
def test_values_coinbase_never_sends_are_refused_with_their_reason(
    change: dict[str, str], reason: str
) -> None:
    """A value outside the documented shape is quarantined, never guessed at."""
    base = wire.trade_fields(7, "BTC-USD", "1.5", "2", "SELL", "2024-01-01T00:00:00.5Z")
    raw = socket_trade({**base, **change})
    with pytest.raises(TradeInvalidError) as refused:
        normalise_trade(raw)
    assert refused.value.reason == reason


@settings(max_examples=150)
@given(fields=trade_fields())
def test_generated_trades_normalise_exactly_and_survive_the_raw_record(
    fields: dict[str, FieldValue],
) -> None:
    """Decimals and times exactly as sent; the raw record normalises to the same trade."""
    raw = socket_trade(fields)
    trade = normalise_trade(raw)
    assert trade.price == Decimal(str(fields["price"]))
    assert trade.quantity == Decimal(str(fields["size"]))
    assert trade.quote_quantity == Context(prec=100).multiply(trade.price, trade.quantity)
    assert trade.side == {"BUY": "sell", "SELL": "buy"}[str(fields["side"])]
    assert trade.trade_id == str(int(str(fields["trade_id"])))
    assert micros_from_datetime(trade.exchange_ts) == rfc3339_micros(str(fields["time"]), "t")
    record = ADAPTER.to_record(raw, ADAPTER.message_id(raw), "0.1.0")
    assert record["message_id"] == trade.message_id
    assert trade_from_record(record) == trade
    assert raw_from_record(record).trade_key == raw.trade_key
