"""Hypothesis strategies for Bybit spot trades as the exchange sends them."""

from __future__ import annotations

from hypothesis import strategies as st

from k2.exchanges.base import FieldValue
from k2.exchanges.bybit import wire
from tests.unit.exchanges.strategies import decimal_texts, millis

symbols = st.from_regex(r"[A-Z0-9]{2,6}(USDT|USDC|BTC|EUR)", fullmatch=True)
spot_ids = st.integers(min_value=0, max_value=2**63 - 1).map(str)


@st.composite
def trade_fields(draw: st.DrawFn, symbol: str | None = None) -> dict[str, FieldValue]:
    """One spot trade's fields (the push's ``ts``/``type`` with them), any valid values."""
    return wire.trade_fields(
        symbol=draw(symbols) if symbol is None else symbol,
        trade_id=draw(spot_ids),
        price=draw(decimal_texts()),
        size=draw(decimal_texts()),
        trade_time_ms=draw(millis),
        side=draw(st.sampled_from(["Buy", "Sell"])),
        seq=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        frame_ts=draw(millis),
    )


@st.composite
def pushes(draw: st.DrawFn) -> list[dict[str, FieldValue]]:
    """The trades of one push: one symbol, one frame ``ts``, 1 to 20 trades."""
    symbol, ts = draw(symbols), draw(millis)
    trades = draw(st.lists(trade_fields(symbol), min_size=1, max_size=20))
    return [{**fields, "ts": ts} for fields in trades]
