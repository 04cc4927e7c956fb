"""Binance raw trades become unified trades: the taker's side from ``m``, times in the stream's
unit, symbols split by reference data, and the same trade from a raw record as from the frame."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2.domain import micros_from_datetime
from k2.errors import TradeInvalidError
from k2.exchanges.base import Envelope, FieldValue, Protocol_, RawTrade
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.binance.normalise import normalise_trade as normalise_binance
from k2.exchanges.binance.normalise import split_symbol, trade_from_record
from k2.exchanges.binance.parse import parse_frame as parse_binance
from tests.unit.exchanges.binance.strategies import binance_agg_trade_fields, binance_trade_fields
from tests.unit.exchanges.recordings import received_frames
from tests.unit.exchanges.records import record_of

BINANCE_AGG = Envelope(
    received_us=1_633_998_523_957_215, connection_id="c", position=0, protocol="binance-aggtrade"
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def envelope(protocol: Protocol_) -> Envelope:
    return Envelope(
        received_us=1_700_000_000_123_456, connection_id="c", position=0, protocol=protocol
    )


def binance(m: bool = True, **changes: FieldValue) -> RawTrade:
    fields = binance_wire.trade_fields("BTCUSDT", 12345, "0.001", "100", 1672515782136, m)
    fields.update(changes)
    return RawTrade("binance", "BTCUSDT", 12345, fields, envelope("binance-trade"))


def test_binance_buyer_is_maker_means_the_taker_sold() -> None:
    """Binance's m=true (the buyer was the maker) is stored as a taker sell, and m=false as a taker
    buy."""
    assert normalise_binance(binance(m=True)).side == "sell"
    assert normalise_binance(binance(m=False)).side == "buy"


def test_binance_times_follow_the_time_unit() -> None:
    """Binance trade times are read in the stream's unit, milliseconds or microseconds, and a
    microsecond time is recognised without being told."""
    ms = normalise_binance(binance())
    assert micros_from_datetime(ms.exchange_ts) == 1_672_515_782_136_000
    us = normalise_binance(binance(T=1_672_515_782_136_789), time_unit="MICROSECOND")
    assert micros_from_datetime(us.exchange_ts) == 1_672_515_782_136_789
    inferred = normalise_binance(binance(T=1_672_515_782_136_789))
    assert inferred.exchange_ts == us.exchange_ts


def test_message_ids_name_exchange_symbol_and_trade_id() -> None:
    """A Binance trade's message_id is its exchange, symbol and trade id, an aggregate trade's
    marked agg- so the two id sequences never meet."""
    assert normalise_binance(binance()).message_id == "binance:BTCUSDT:12345"
    agg = binance_wire.agg_trade_fields("BTCUSDT", 12345, "1", "1", 1, 2, 1672515782136, True)
    raw = RawTrade("binance", "BTCUSDT", 12345, agg, envelope("binance-aggtrade"))
    assert normalise_binance(raw).message_id == "binance:BTCUSDT:agg-12345"


def test_binance_symbols_split_by_reference_data_then_known_quotes() -> None:
    """A Binance symbol splits into base and quote by the exchange's reference data, else by the
    longest known quote asset, and a bare asset does not split."""
    assert normalise_binance(binance(), {"BTCUSDT": ("BTC", "USDT")}).symbol == "BTC/USDT"
    assert split_symbol("ETHBTC") == ("ETH", "BTC")
    assert split_symbol("BTCFDUSD") == ("BTC", "FDUSD")
    assert split_symbol("USDT") is None


def test_unreadable_values_raise_with_a_reason() -> None:
    """A Binance trade whose price is not a plain decimal is refused with the name of that field."""
    with pytest.raises(TradeInvalidError) as caught:
        normalise_binance(binance(p="1_000"))
    assert caught.value.reason == "p"


def _binance_agg_frames() -> list[str]:
    frames = received_frames("BINANCE.ws.1.0") + received_frames("BINANCE_US.ws.1.0")
    return [frame for frame in frames if '"e":"aggTrade"' in frame]


def test_recorded_binance_agg_trades_normalise_exactly() -> None:
    """A real recorded Binance aggregate trade normalises to its exact price, quantity, quote
    quantity, taker side and millisecond time."""
    frame = _binance_agg_frames()[0]
    (raw,) = parse_binance(frame, BINANCE_AGG).trades
    trade = normalise_binance(raw, {"NKNUSDT": ("NKN", "USDT")})
    assert trade.message_id == "binance:NKNUSDT:agg-15683430"
    assert (trade.symbol, trade.price, trade.quantity) == (
        "NKN/USDT",
        Decimal("0.35280000"),
        Decimal("58.00000000"),
    )
    assert trade.quote_quantity == Decimal("20.4624000000000000")
    assert trade.side == "buy"  # m=false: the buyer was the taker
    assert trade.exchange_ts.microsecond == 963_000


def _envelope(protocol: Protocol_, received_us: int = 1_700_000_000_123_456) -> Envelope:
    return Envelope(received_us, "conn-1", 7, protocol)


@SETTINGS
@given(fields=st.one_of(binance_trade_fields(), binance_agg_trade_fields()))
def test_binance_record_normalises_like_its_trade(fields: dict[str, FieldValue]) -> None:
    """Binance @trade and @aggTrade: same unified trade in the record's time unit."""
    time = fields["T"]
    assert isinstance(time, int)
    unit = "MICROSECOND" if time >= 10**15 else "MILLISECOND"
    aggregate = fields["e"] == "aggTrade"
    key = fields["a"] if aggregate else fields["t"]
    assert isinstance(key, int)
    protocol: Protocol_ = "binance-aggtrade" if aggregate else "binance-trade"
    raw = RawTrade("binance", str(fields["s"]), key, fields, _envelope(protocol))
    stream = "aggTrade" if aggregate else "trade"
    record = record_of("binance", raw, stream=stream, time_unit=unit)
    expected = normalise_binance(raw, time_unit=unit)  # type: ignore[arg-type]
    assert trade_from_record(record) == expected


def test_an_out_of_range_time_is_an_invalid_trade_not_a_crash() -> None:
    """A µs time read as ms overflows the calendar: an invalid trade (reason time), no crash."""
    fields: dict[str, FieldValue] = {
        "e": "trade", "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": 10**16, "m": True,
    }  # fmt: skip
    raw = RawTrade("binance", "BTCUSDT", 1, fields, _envelope("binance-trade"))
    with pytest.raises(TradeInvalidError) as caught:
        normalise_binance(raw, time_unit="MILLISECOND")
    assert caught.value.reason == "time"
