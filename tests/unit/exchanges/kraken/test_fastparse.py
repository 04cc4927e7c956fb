"""The msgspec fast path for Kraken v2 trades gives exactly what the generic parser gives, or
steps aside."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2.exchanges.base import Envelope, FieldValue
from k2.exchanges.kraken import wire as kraken_wire
from k2.exchanges.kraken.fastparse import parse_v2_trades
from k2.exchanges.kraken.parse import generic_v2_frame
from tests.unit.exchanges.kraken.strategies import kraken_v2_fields

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KRAKEN = Envelope(1_700_000_000_000_000, "c", 3, "kraken-v2")


@SETTINGS
@given(trades=st.lists(kraken_v2_fields(), min_size=1, max_size=5), snapshot=st.booleans())
def test_kraken_v2_trade_frames_parse_the_same_on_both_paths(
    trades: list[dict[str, FieldValue]], snapshot: bool
) -> None:
    """Rendered v2 trade frames: the fast path takes them (ids of the whole long range) and
    agrees."""
    frame = kraken_wire.render_v2_trades(trades, "snapshot" if snapshot else "update")
    fast = parse_v2_trades(frame, KRAKEN)
    generic = generic_v2_frame(frame, KRAKEN)
    assert fast is None or fast == generic
    if all(isinstance(t["trade_id"], int) for t in trades):
        assert fast == generic


@pytest.mark.parametrize("trade_id", [2**63, 2**64, -(2**63) - 1])
def test_an_id_beyond_the_long_range_is_malformed_on_both_kraken_paths(trade_id: int) -> None:
    """A v2 trade id no Avro long holds: the fast path steps aside, the frame is dead-lettered."""
    timestamp = "2024-01-01T00:00:00.000001Z"
    fields = kraken_wire.v2_trade_fields("BTC/USD", "buy", "1", "1", "limit", trade_id, timestamp)
    frame = kraken_wire.render_v2_trades([fields], "update")
    generic = generic_v2_frame(frame, KRAKEN)
    assert parse_v2_trades(frame, KRAKEN) is None
    assert generic.malformed is not None and not generic.trades
    assert "64-bit" in generic.malformed.error


@SETTINGS
@given(
    number=st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False).map(str),
        st.integers().map(str),
        st.from_regex(
            r"-?(0|[1-9][0-9]{0,70})(\.[0-9]{1,70})?([eE][+-]?[0-9]{1,3})?", fullmatch=True
        ),
    ),
    where=st.sampled_from(["price", "qty"]),
)
def test_any_json_number_text_takes_the_fast_path_only_when_it_is_kept_as_sent(
    number: str, where: str
) -> None:
    """Exponents, signs and long numbers step aside; what the fast path keeps is exactly the
    decimal text the generic path makes of the number."""
    price, qty = (number, "1") if where == "price" else ("1", number)
    timestamp = "2024-01-01T00:00:00.000001Z"
    text = kraken_wire.v2_trade_text("BTC/USD", "buy", price, qty, "limit", 7, timestamp)
    frame = kraken_wire.render_v2_trade_texts([text], "update")
    fast = parse_v2_trades(frame, KRAKEN)
    generic = generic_v2_frame(frame, KRAKEN)
    assert fast is None or fast == generic
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", number) and len(number) <= 60:
        assert fast is not None and fast.trades[0].fields[where] == number
