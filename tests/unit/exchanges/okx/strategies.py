"""Hypothesis strategies for OKX trades as OKX sends them."""

from __future__ import annotations

from hypothesis import strategies as st

from k2.exchanges.base import FieldValue
from k2.exchanges.okx import wire

from ..strategies import decimal_texts

inst_ids = st.from_regex(r"[A-Z0-9]{2,6}-(USDT|USDC|BTC|EUR)", fullmatch=True)
trade_ids = st.integers(min_value=0, max_value=2**63 - 1)
# 2001-09-09 .. 2286, in milliseconds
millis = st.integers(min_value=1_000_000_000_000, max_value=9_999_999_999_999)


@st.composite
def trade_fields(draw: st.DrawFn) -> dict[str, FieldValue]:
    """The fields of one ``trades-all`` row, every value a string."""
    return wire.trade_fields(
        inst_id=draw(inst_ids),
        trade_id=draw(trade_ids),
        px=draw(decimal_texts()),
        sz=draw(decimal_texts()),
        side=draw(st.sampled_from(["buy", "sell"])),
        ts_ms=draw(millis),
        source=draw(st.sampled_from(["0", "1"])),
    )
