"""What every exchange's frame parser shares: it never raises on any input, an oversized frame is
malformed and cut before anything reads it, and a fast path steps aside or agrees with the
generic reader."""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2.exchanges.base import Envelope, ParsedFrame, Protocol_
from k2.exchanges.binance.fastparse import parse_trade
from k2.exchanges.binance.parse import generic_frame
from k2.exchanges.binance.parse import parse_frame as parse_binance
from k2.exchanges.kraken.fastparse import parse_v2_trades
from k2.exchanges.kraken.parse import generic_v2_frame, parse_v1_frame, parse_v2_frame
from tests.unit.exchanges.strategies import arbitrary_text, json_values

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PARSERS: dict[Protocol_, Callable[[str, Envelope], ParsedFrame]] = {
    "kraken-v1": parse_v1_frame,
    "kraken-v2": parse_v2_frame,
    "binance-trade": parse_binance,
    "binance-aggtrade": parse_binance,
}
KRAKEN = Envelope(1_700_000_000_000_000, "c", 3, "kraken-v2")
BINANCE = Envelope(1_700_000_000_000_000, "c", 3, "binance-trade")


def envelope(protocol: Protocol_) -> Envelope:
    return Envelope(
        received_us=1_700_000_000_000_000, connection_id="c", position=0, protocol=protocol
    )


@SETTINGS
@given(text=arbitrary_text, protocol=st.sampled_from(list(PARSERS)))
def test_parsers_never_raise_on_arbitrary_input(text: str, protocol: Protocol_) -> None:
    """Whatever text arrives on a socket, a parser never raises: it says what the frame held, or
    marks it malformed keeping its text."""
    parsed = PARSERS[protocol](text, envelope(protocol))
    produced = [
        bool(parsed.trades),
        bool(parsed.controls),
        parsed.malformed is not None,
        parsed.unknown_kind is not None,
    ]
    assert sum(produced) >= 1 or parsed == ParsedFrame()
    if parsed.malformed is not None:
        assert parsed.malformed.raw == text


def test_absurdly_large_frames_are_malformed_and_truncated() -> None:
    """A frame over the size limit is malformed before anything reads it, and only the limit's worth
    of its text is kept."""
    frame = '{"e":"trade","s":"' + "A" * 5000 + '"}'
    for protocol, parse in PARSERS.items():
        parsed = parse(frame, envelope(protocol), 1000)  # type: ignore[call-arg]
        assert parsed.malformed is not None
        assert len(parsed.malformed.raw) == 1000
        assert "exceeds the limit" in parsed.malformed.error


@SETTINGS
@given(value=json_values)
def test_odd_frames_step_aside_or_agree(value: object) -> None:
    """Arbitrary JSON under the trade keys never makes the fast paths disagree."""
    for frame in (
        json.dumps({"channel": "trade", "type": "update", "data": [value]}),
        json.dumps({"stream": "x@trade", "data": value}),
    ):
        fast_k = parse_v2_trades(frame, KRAKEN)
        assert fast_k is None or fast_k == generic_v2_frame(frame, KRAKEN)
        fast_b = parse_trade(frame, BINANCE)
        assert fast_b is None or fast_b == generic_frame(frame, BINANCE)
