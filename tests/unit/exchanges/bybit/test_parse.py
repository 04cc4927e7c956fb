"""Bybit frames parse to exactly the trades and answers they hold: recorded legacy frames, the
documentation's examples of the v5 format, a live spot capture and generated pushes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from k2.exchanges.base import ControlKind, Envelope, FieldValue
from k2.exchanges.bybit import wire
from k2.exchanges.bybit.parse import generic_frame, parse_frame, refused_symbols
from tests.unit.exchanges.recordings import received_frames

from .strategies import pushes

ENVELOPE = Envelope(1_700_000_000_000_000, "c", 0, "bybit-spot")

# docs/v5/websocket/public/trade.mdx (bybit-exchange/docs), verbatim: a linear trade (``L``
# and a UUID ``i`` are linear's), the current format's only documented example.
DOC_TRADE = """{
    "topic": "publicTrade.BTCUSDT",
    "type": "snapshot",
    "ts": 1672304486868,
    "data": [
        {
            "T": 1672304486865,
            "s": "BTCUSDT",
            "S": "Buy",
            "v": "0.001",
            "p": "16578.50",
            "L": "PlusTick",
            "i": "20f43950-d8dd-5b31-9112-a178eb6023af",
            "BT": false
        }
    ]
}"""
# docs/v5/websocket/wss-authentication.mdx, the "Public Spot" subscribe response and spot pong.
DOC_SPOT_ACK = """{
    "success": true,
    "ret_msg": "subscribe",
    "conn_id": "2324d924-aa4d-45b0-a858-7b8be29ab52b",
    "req_id": "10001",
    "op": "subscribe"
}"""
DOC_SPOT_PONG = """{
    "success": true,
    "ret_msg": "pong",
    "conn_id": "0970e817-426e-429a-a679-ff7f55e0b16a",
    "op": "ping"
}"""
# A live spot push as third-party clients quote it (docs/exchange-protocols.md 4b).
SPOT_CAPTURE = (
    '{"topic":"publicTrade.BTCUSDT","ts":1788335009483,"type":"snapshot","data":[{"i":'
    '"2290000001202469355","T":1788335009482,"p":"77606.8","v":"0.000712","S":"Buy","seq":'
    '113508069853,"s":"BTCUSDT","BT":false,"RPI":false}]}'
)


def test_the_documented_trade_keeps_every_field_as_sent() -> None:
    """The v5 documentation's trade: every field kept as sent, the frame's ts and type with it;
    its UUID id is no integer key."""
    (trade,) = parse_frame(DOC_TRADE, ENVELOPE).trades
    assert trade.native_symbol == "BTCUSDT" and trade.trade_key is None
    assert trade.fields == {
        "T": 1672304486865, "s": "BTCUSDT", "S": "Buy", "v": "0.001", "p": "16578.50",
        "L": "PlusTick", "i": "20f43950-d8dd-5b31-9112-a178eb6023af", "BT": False,
        "ts": 1672304486868, "type": "snapshot",
    }  # fmt: skip


def test_documented_answers_are_an_ack_and_a_pong_with_the_connection_id() -> None:
    """The documented spot ack and pong become an ack and a pong naming Bybit's conn_id."""
    (ack,) = parse_frame(DOC_SPOT_ACK, ENVELOPE).controls
    assert ack.kind == ControlKind.ACK and ack.detail["req_id"] == "10001"
    assert ack.detail["conn_id"] == "2324d924-aa4d-45b0-a858-7b8be29ab52b"
    (pong,) = parse_frame(DOC_SPOT_PONG, ENVELOPE).controls
    assert pong.kind == ControlKind.PONG


def test_refusals_name_the_symbols_or_are_errors() -> None:
    """A refusal naming topics is a rejected subscription naming their symbols; one naming
    none (too many args) is an error with Bybit's message."""
    invalid = wire.render_ack("subscribe", "x", "7", False, "Invalid symbol :[publicTrade.NOPE]")
    (rejected,) = parse_frame(invalid, ENVELOPE).controls
    assert rejected.kind == ControlKind.SUBSCRIPTION_REJECTED and rejected.symbol == "NOPE"
    assert rejected.detail["message"] == "Invalid symbol :[publicTrade.NOPE]"
    too_many = '{"success":false,"ret_msg":"args size \\u003e10","conn_id":"x","op":"subscribe"}'
    (error,) = parse_frame(too_many, ENVELOPE).controls
    assert error.kind == ControlKind.ERROR and error.detail["message"] == "args size >10"
    assert refused_symbols("error:handler not found,topic:publicTrade.NOTASYMBOL") == ["NOTASYMBOL"]
    assert refused_symbols("Invalid symbol :[publicTrade.A,publicTrade.B]") == ["A", "B"]


def test_the_legacy_recording_is_acks_and_trade_topics_of_another_format() -> None:
    """The recorded legacy feed (its trade.<symbol> frames and their acks): every ack is read
    with its conn_id and echoed args, every legacy trade frame is a kind K2 does not take from
    this feed, and nothing is malformed."""
    frames = received_frames("BYBIT.ws.25.0.trades")
    parsed = [parse_frame(frame, ENVELOPE) for frame in frames]
    assert not any(p.malformed for p in parsed)
    acks = [c for p in parsed for c in p.controls]
    assert len(acks) == 8 and all(c.kind == ControlKind.ACK for c in acks)
    assert {c.detail["conn_id"] for c in acks} == {"38cf0ac3-af67-483c-9bbc-b57d45910ecb"}
    assert acks[0].detail["args"] == "trade.BCHUSDT" and acks[0].detail["op"] == "subscribe"
    kinds = [p.unknown_kind for p in parsed if not p.controls]
    assert len(kinds) == 66 and set(kinds) == {"topic:trade"}


def test_a_trade_of_another_symbol_than_its_topic_is_malformed() -> None:
    """A push whose trade names another symbol than its topic is dead-lettered, never kept
    under the wrong key."""
    frame = SPOT_CAPTURE.replace('"s":"BTCUSDT"', '"s":"ETHUSDT"')
    parsed = parse_frame(frame, ENVELOPE)
    assert parsed.malformed is not None and not parsed.trades
    assert "ETHUSDT" in parsed.malformed.error


@given(trades=pushes())
def test_generated_pushes_round_trip_through_the_wire(trades: list[dict[str, FieldValue]]) -> None:
    """Any push rendered as Bybit writes it parses back to the same fields, the fast path
    and the generic reader alike."""
    text = wire.render_trades(trades)
    parsed = parse_frame(text, ENVELOPE)
    assert [t.fields for t in parsed.trades] == trades
    assert parsed == generic_frame(text, ENVELOPE)
    assert all(t.trade_key == int(str(t.fields["i"])) for t in parsed.trades)


@given(text=st.text(max_size=200), value=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
))  # fmt: skip
def test_any_input_is_parsed_without_raising(text: str, value: object) -> None:
    """Arbitrary text and JSON values never raise, and both paths agree on them."""
    for frame in (text, json.dumps(value), SPOT_CAPTURE[: len(text)]):
        assert parse_frame(frame, ENVELOPE) == generic_frame(frame, ENVELOPE)
