"""Pure parsing of Bybit v5 public WebSocket frames.

:func:`parse_frame` takes one received frame (text) and its :class:`Envelope` and returns a
:class:`ParsedFrame`; it never raises on any input. A ``publicTrade.<SYMBOL>`` push becomes one
:class:`RawTrade` per element of ``data``, whose ``fields`` are the element itself, unchanged
(``p``/``v`` decimal strings, ``i`` the id string, ``T``/``seq`` ints, ``BT``/``RPI``
booleans), plus the frame's ``ts`` and ``type``; an element whose ``s`` is not the topic's
symbol makes the frame malformed. The trade key is the id as an integer when it is one (spot
ids are numeric strings; linear ones are UUIDs and get none). Acknowledgements become
:class:`Control`: ``success`` true is an ``ack`` (``pong`` for ``op: ping``), false a
``subscription_rejected`` naming the symbols its ``ret_msg`` names (``Invalid symbol
:[publicTrade.NOPE]``, ``error:handler not found,topic:publicTrade.NOPE``) or an ``error`` when
it names none (``args size >10``). The legacy feed's acks (``request`` instead of ``op``) are
read alike. Other topics are ``unknown_kind`` (``topic:orderbook``, ``topic:trade``).
"""

from __future__ import annotations

import re

from k2.exchanges.base import (
    LONG_MAX,
    LONG_MIN,
    Control,
    ControlKind,
    Envelope,
    FieldValue,
    ParsedFrame,
    RawTrade,
)
from k2.exchanges.bybit import EXCHANGE, wire
from k2.exchanges.bybit.fastparse import parse_trades, trade_key
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS, parse_with, read_frame, reject

# Required fields of a trade element, with the type each must have ("int" excludes booleans).
_REQUIRED: dict[str, type] = {"s": str, "i": str, "T": int, "p": str, "v": str, "S": str}
_BRACKETED = re.compile(r"\[([^\]]*)\]")
_NAMED_TOPIC = re.compile(r"topic:(\S+)")


def parse_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """Parse one Bybit frame: a trade push, an ack or pong, or anything else."""
    return parse_with(text, envelope, max_chars, parse_trades, read_message)


def generic_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """:func:`parse_frame` without the fast path (the reference it is tested against)."""
    return read_frame(text, envelope, max_chars, read_message)


def read_message(data: object, envelope: Envelope) -> ParsedFrame:
    """What one frame's JSON value holds (trades, a control, or a kind K2 does not use)."""
    if not isinstance(data, dict):
        reject("expected a JSON object")
    if "topic" in data:
        return _push(data, envelope)
    if "success" in data:
        return _answer(data)
    if data.get("op") == "pong":  # the option and private feeds' pong
        return ParsedFrame(controls=(Control(ControlKind.PONG),))
    return ParsedFrame(unknown_kind="object")


def _push(obj: dict[str, object], envelope: Envelope) -> ParsedFrame:
    topic = obj["topic"]
    if not isinstance(topic, str):
        reject("topic is not a string")
    symbol = wire.symbol_of(topic)
    if symbol is None:
        return ParsedFrame(unknown_kind="topic:" + topic.partition(".")[0])
    data = obj.get("data")
    if not isinstance(data, list):
        reject("trade push without a data list")
    frame: dict[str, FieldValue] = {}
    for name in wire.FRAME_FIELDS:
        if name in obj:
            frame[name] = _value(name, obj[name])
    trades = tuple(_trade(item, symbol, frame, envelope) for item in data)
    return ParsedFrame(trades=trades)


def _value(name: str, value: object) -> FieldValue:
    if value is not None and not isinstance(value, str | int | bool):
        reject(f"field {name} has an unexpected value type")
    if isinstance(value, int) and not LONG_MIN <= value <= LONG_MAX:
        reject(f"field {name} is outside the signed 64-bit range")
    return value


def _trade(item: object, symbol: str, frame: dict[str, FieldValue], envelope: Envelope) -> RawTrade:
    if not isinstance(item, dict):
        reject("trade element is not an object")
    for name, expected in _REQUIRED.items():
        value = item.get(name)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            reject(f"trade field {name} missing or not a {expected.__name__}")
    if item["s"] != symbol:
        reject(f"trade of {item['s']} in the push of {symbol}")
    fields: dict[str, FieldValue] = {}
    for name, value in item.items():
        if name in wire.FRAME_FIELDS:
            reject(f"trade field {name} is also a field of the frame")
        fields[name] = _value(name, value)
    fields.update(frame)
    trade_id = item["i"]
    assert isinstance(trade_id, str)  # checked above
    return RawTrade(EXCHANGE, symbol, trade_key(trade_id), fields, envelope)


def _answer(obj: dict[str, object]) -> ParsedFrame:
    """An acknowledgement, a pong or a refusal (``success`` true or false)."""
    op = obj.get("op")
    request = obj.get("request")  # the legacy feed echoes the request instead of ``op``
    args: list[object] = []
    if op is None and isinstance(request, dict):
        op, echoed = request.get("op"), request.get("args")
        args = echoed if isinstance(echoed, list) else []
    message = obj.get("ret_msg")
    detail: dict[str, FieldValue] = {
        "op": op if isinstance(op, str) else None,
        "req_id": _text(obj.get("req_id")),
        "conn_id": _text(obj.get("conn_id")),
        "message": message if isinstance(message, str) else None,
    }
    if args:
        detail["args"] = ",".join(str(arg) for arg in args)
    if obj.get("success") is True:
        kind = ControlKind.PONG if op == "ping" else ControlKind.ACK
        return ParsedFrame(controls=(Control(kind, None, detail),))
    named = refused_symbols(str(message or ""))
    if not named:
        return ParsedFrame(controls=(Control(ControlKind.ERROR, None, detail),))
    detail["symbols"] = ",".join(named)
    rejected = Control(ControlKind.SUBSCRIPTION_REJECTED, named[0], detail)
    return ParsedFrame(controls=(rejected,))


def refused_symbols(message: str) -> list[str]:
    """The symbols of the trade topics a refusal names (``[publicTrade.A,publicTrade.B]`` or
    ``topic:publicTrade.A``), in order; topics of other channels are named as they are."""
    found = _BRACKETED.search(message)
    if found is not None:
        names = [name.strip() for name in found.group(1).split(",") if name.strip()]
    else:
        names = _NAMED_TOPIC.findall(message)
    return [wire.symbol_of(name) or name for name in names]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
