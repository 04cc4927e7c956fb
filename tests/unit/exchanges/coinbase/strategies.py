"""Hypothesis strategies for Coinbase messages and trades as the exchange sends them, and the
recorded Exchange-feed trades re-expressed as Advanced Trade and history trades."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from k2.exchanges.base import FieldValue
from k2.exchanges.coinbase import wire
from tests.unit.exchanges.recordings import received_frames
from tests.unit.exchanges.strategies import decimal_texts, micros

RECORDING = "COINBASE.ws.28.0.trades"
products = st.from_regex(r"[A-Z]{2,6}-(USD|EUR|BTC|USDT|GBP)", fullmatch=True)
trade_ids = st.integers(min_value=0, max_value=2**63 - 1)


@st.composite
def times(draw: st.DrawFn) -> str:
    """RFC 3339 with 3, 6 or 9 fraction digits, as Coinbase varies them."""
    text = wire.format_time(draw(micros))
    digits = draw(st.sampled_from([0, 3, 6, 9]))
    whole, fraction = text[:19], text[20:26]
    extra = draw(st.text(alphabet="0123456789", min_size=3, max_size=3))
    fraction = (fraction + extra)[:digits]
    return f"{whole}.{fraction}Z" if fraction else f"{whole}Z"


@st.composite
def trade_fields(draw: st.DrawFn, product: str | None = None) -> dict[str, FieldValue]:
    """One ``market_trades`` trade object; ids sometimes with leading zeros."""
    trade_id = draw(trade_ids)
    padding = draw(st.sampled_from(["", "", "0", "000"]))
    return wire.trade_fields(
        padding + str(trade_id),
        product or draw(products),
        draw(decimal_texts()),
        draw(decimal_texts()),
        draw(st.sampled_from(["BUY", "SELL"])),
        draw(times()),
    )


@st.composite
def market_trades(draw: st.DrawFn) -> str:
    """A ``market_trades`` message of one event, its trades in any order."""
    trades = draw(st.lists(trade_fields(), min_size=1, max_size=8))
    kind = draw(st.sampled_from(["snapshot", "update"]))
    sequence = draw(st.integers(min_value=0, max_value=2**40))
    return wire.render_market_trades(trades, kind, sequence, wire.format_timestamp(10**18))


def recorded_matches() -> list[dict[str, Any]]:
    """Every ``match``/``last_match`` of the recorded Exchange feed, as received."""
    return [json.loads(frame) for frame in received_frames(RECORDING)]


def as_market_trade(match: dict[str, Any]) -> dict[str, FieldValue]:
    """A recorded match as ``market_trades`` sends a trade: the same values, the id as text and
    the side, the maker's as in the match, upper case."""
    maker = match["side"].upper()
    return wire.trade_fields(
        match["trade_id"], match["product_id"], match["price"], match["size"], maker, match["time"]
    )
