"""Binance frames parse to exactly the trades they hold: recorded sessions, round trips through
the wire format, and any input without raising."""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2.domain import micros_from_datetime
from k2.exchanges.base import Envelope, FieldValue, Protocol_
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.binance.normalise import normalise_trade as normalise_binance
from k2.exchanges.binance.normalise import trade_time_micros
from k2.exchanges.binance.parse import parse_frame as parse_binance
from tests.unit.exchanges.binance.strategies import binance_agg_trade_fields, binance_trade_fields
from tests.unit.exchanges.recordings import received_frames

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BINANCE_AGG = Envelope(
    received_us=1_633_998_523_957_215, connection_id="c", position=0, protocol="binance-aggtrade"
)


def envelope(protocol: Protocol_) -> Envelope:
    return Envelope(
        received_us=1_700_000_000_000_000, connection_id="c", position=0, protocol=protocol
    )


@SETTINGS
@given(fields=binance_trade_fields(), combined=st.booleans())
def test_binance_trade_render_then_parse_gives_the_same_trade(
    fields: dict[str, FieldValue], combined: bool
) -> None:
    """Any Binance trade, bare or in a combined stream, parses back to exactly its fields, its id as
    the key, and the taker side and time it stands for."""
    stream = binance_wire.stream_name(str(fields["s"]), "trade") if combined else None
    parsed = parse_binance(binance_wire.render_trade(fields, stream), envelope("binance-trade"))
    (trade,) = parsed.trades
    assert dict(trade.fields) == fields
    assert trade.trade_key == fields["t"]
    unified = normalise_binance(trade)
    assert str(unified.price) == fields["p"]
    assert unified.side == ("sell" if fields["m"] else "buy")
    assert micros_from_datetime(unified.exchange_ts) == trade_time_micros(int(str(fields["T"])))


@SETTINGS
@given(fields=binance_agg_trade_fields(), combined=st.booleans())
def test_binance_agg_trade_render_then_parse_gives_the_same_trade(
    fields: dict[str, FieldValue], combined: bool
) -> None:
    """Any Binance aggregate trade parses back to exactly its fields, its aggregate id as the key of
    its own id sequence."""
    stream = binance_wire.stream_name(str(fields["s"]), "aggTrade") if combined else None
    frame = binance_wire.render_agg_trade(fields, stream)
    (trade,) = parse_binance(frame, envelope("binance-aggtrade")).trades
    assert dict(trade.fields) == fields
    assert trade.trade_key == fields["a"]
    assert normalise_binance(trade).message_id.endswith(f":agg-{fields['a']}")


@SETTINGS
@given(fields=binance_trade_fields(), cut=st.integers(min_value=1, max_value=60))
def test_truncated_trade_frames_are_malformed_with_their_text(
    fields: dict[str, FieldValue], cut: int
) -> None:
    """A Binance trade frame cut short is a malformed frame that keeps its text for the DLQ, never a
    trade."""
    frame = binance_wire.render_trade(fields, "x@trade")[:-cut]
    parsed = parse_binance(frame, envelope("binance-trade"))
    assert parsed.malformed is not None
    assert parsed.malformed.raw == frame
    assert not parsed.trades


def _binance_agg_frames() -> list[str]:
    frames = received_frames("BINANCE.ws.1.0") + received_frames("BINANCE_US.ws.1.0")
    return [frame for frame in frames if '"e":"aggTrade"' in frame]


def test_every_recorded_binance_agg_trade_frame_is_its_trade() -> None:
    """Every aggregate trade recorded from Binance parses to its trade with the exact decimal text
    of the frame."""
    frames = _binance_agg_frames()
    assert len(frames) == 2 + 11
    for frame in frames:
        parsed = parse_binance(frame, BINANCE_AGG)
        assert parsed.malformed is None
        (trade,) = parsed.trades
        data = json.loads(frame)["data"]
        assert dict(trade.fields) == data
        # exact decimal text, as it appears in the frame
        assert f'"p":"{trade.fields["p"]}"' in frame
        assert f'"q":"{trade.fields["q"]}"' in frame
        assert trade.trade_key == int(re.search(r'"a":(\d+)', frame).group(1))  # type: ignore[union-attr]
        assert trade.native_symbol == data["s"]


def test_binance_recordings_other_streams_are_unknown_kinds_not_errors() -> None:
    """Depth, kline and book-ticker frames on a recorded Binance connection are unknown kinds to
    count, not errors."""
    frames = received_frames("BINANCE.ws.1.0") + received_frames("BINANCE_US.ws.1.0")
    kinds = {parse_binance(frame, BINANCE_AGG).unknown_kind for frame in frames}
    assert kinds == {None, "event:depthUpdate", "event:kline", "stream:bookTicker"}
