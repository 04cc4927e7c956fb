"""The msgspec fast path for Binance trades gives exactly what the generic parser gives, or steps
aside."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2.exchanges.base import Envelope, FieldValue
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.binance.fastparse import parse_trade
from k2.exchanges.binance.parse import generic_frame
from tests.unit.exchanges.binance.strategies import binance_agg_trade_fields, binance_trade_fields
from tests.unit.exchanges.recordings import received_frames

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BINANCE = Envelope(1_700_000_000_000_000, "c", 3, "binance-trade")


def test_every_recorded_binance_frame_parses_the_same_on_both_paths() -> None:
    """Recorded Binance frames: the fast path takes the trades, the generic path agrees."""
    frames = received_frames("BINANCE.ws.1.0") + received_frames("BINANCE_US.ws.1.0")
    taken = 0
    for frame in frames:
        fast = parse_trade(frame, BINANCE)
        if fast is not None:
            taken += 1
            assert fast == generic_frame(frame, BINANCE)
    assert taken > 0


@pytest.mark.parametrize("name", ["t", "T", "E"])
def test_a_number_beyond_the_long_range_is_malformed_on_both_binance_paths(name: str) -> None:
    """A Binance id or time no Avro long holds: the fast path steps aside, the frame is
    dead-lettered."""
    fields = {**binance_wire.trade_fields("BTCUSDT", 7, "1", "1", 1, True), name: 2**63}
    frame = binance_wire.render_trade(fields, "btcusdt@trade")
    generic = generic_frame(frame, BINANCE)
    assert parse_trade(frame, BINANCE) is None
    assert generic.malformed is not None and not generic.trades


@SETTINGS
@given(fields=st.one_of(binance_trade_fields(), binance_agg_trade_fields()), wrap=st.booleans())
def test_binance_trade_frames_parse_the_same_on_both_paths(
    fields: dict[str, FieldValue], wrap: bool
) -> None:
    """Rendered Binance payloads, raw or combined: the fast path takes them and agrees."""
    aggregate = fields["e"] == "aggTrade"
    stream = f"{str(fields['s']).lower()}@{fields['e']}" if wrap else None
    render = binance_wire.render_agg_trade if aggregate else binance_wire.render_trade
    frame = render(fields, stream)
    fast = parse_trade(frame, BINANCE)
    assert fast is not None
    assert fast == generic_frame(frame, BINANCE)
