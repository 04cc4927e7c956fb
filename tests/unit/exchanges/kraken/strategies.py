"""Hypothesis strategies for Kraken trades as the exchange sends them (v1 and v2)."""

from __future__ import annotations

from hypothesis import strategies as st

from k2.exchanges.base import FieldValue
from k2.exchanges.kraken import wire as kraken_wire
from tests.unit.exchanges.strategies import decimal_texts, micros

kraken_v1_pairs = st.from_regex(r"[A-Z]{2,5}/[A-Z]{3,4}", fullmatch=True)


@st.composite
def kraken_v1_fields(draw: st.DrawFn) -> dict[str, FieldValue]:
    return kraken_wire.v1_trade_fields(
        price=draw(decimal_texts()),
        volume=draw(decimal_texts()),
        time=kraken_wire.format_time_v1(draw(micros)),
        side=draw(st.sampled_from(["b", "s"])),
        order_type=draw(st.sampled_from(["l", "m"])),
        misc=draw(st.text(max_size=5)),
    )


@st.composite
def kraken_v2_fields(draw: st.DrawFn) -> dict[str, FieldValue]:
    return kraken_wire.v2_trade_fields(
        symbol=draw(st.from_regex(r"[A-Z]{2,5}/[A-Z]{3,4}", fullmatch=True)),
        side=draw(st.sampled_from(["buy", "sell"])),
        price=draw(decimal_texts()),
        qty=draw(decimal_texts()),
        ord_type=draw(st.sampled_from(["limit", "market"])),
        trade_id=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        timestamp=kraken_wire.format_timestamp_v2(draw(micros)),
    )
