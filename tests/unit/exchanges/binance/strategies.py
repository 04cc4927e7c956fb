"""Hypothesis strategies for Binance trades as the exchange sends them (@trade and @aggTrade)."""

from __future__ import annotations

from hypothesis import strategies as st

from k2.exchanges.base import FieldValue
from k2.exchanges.binance import wire as binance_wire
from tests.unit.exchanges.strategies import decimal_texts, micros, millis

binance_symbols = st.from_regex(r"[A-Z]{2,6}(USDT|BTC|EUR)", fullmatch=True)


@st.composite
def binance_trade_fields(draw: st.DrawFn) -> dict[str, FieldValue]:
    time = draw(st.one_of(millis, micros))
    return binance_wire.trade_fields(
        symbol=draw(binance_symbols),
        trade_id=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        price=draw(decimal_texts()),
        quantity=draw(decimal_texts()),
        trade_time=time,
        buyer_is_maker=draw(st.booleans()),
        event_time=time + draw(st.integers(min_value=0, max_value=5)),
    )


@st.composite
def binance_agg_trade_fields(draw: st.DrawFn) -> dict[str, FieldValue]:
    first = draw(st.integers(min_value=0, max_value=2**62))
    time = draw(st.one_of(millis, micros))
    return binance_wire.agg_trade_fields(
        symbol=draw(binance_symbols),
        agg_id=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        price=draw(decimal_texts()),
        quantity=draw(decimal_texts()),
        first_trade_id=first,
        last_trade_id=first + draw(st.integers(min_value=0, max_value=1000)),
        trade_time=time,
        buyer_is_maker=draw(st.booleans()),
    )
