"""Pure parsing of Binance spot WebSocket frames (raw or combined-stream wrapped).

:func:`parse_frame` takes one received frame (text) and its :class:`Envelope` and returns a
:class:`ParsedFrame`; it never raises on any input. ``@trade`` and ``@aggTrade`` payloads become
:class:`RawTrade` records whose ``fields`` are the payload itself, unchanged (decimal strings stay
strings, ids and times stay ints, ``m``/``M`` stay booleans); the stream name of a combined frame
is not a trade field and is dropped once checked. JSON is read with ``parse_float=Decimal``
so a float can never appear; the common trade frame first takes the typed fast path of
:mod:`k2.exchanges.binance.fastparse` (same result). Request results and errors and
``serverShutdown`` become :class:`Control`; other streams (depth, kline, bookTicker, ...) are
``unknown_kind``.
"""

from __future__ import annotations

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
from k2.exchanges.binance import EXCHANGE
from k2.exchanges.binance.fastparse import parse_trade
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS, parse_with, read_frame, reject

# Required fields per payload kind, with the type each must have ("int" excludes booleans).
_REQUIRED: dict[str, dict[str, type]] = {
    "trade": {"s": str, "t": int, "p": str, "q": str, "T": int, "m": bool},
    "aggTrade": {"s": str, "a": int, "p": str, "q": str, "f": int, "l": int, "T": int, "m": bool},
}
_TRADE_KEY = {"trade": "t", "aggTrade": "a"}


def parse_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """Parse one Binance frame: a trade, aggTrade, result, error, shutdown, or anything else."""
    return parse_with(text, envelope, max_chars, parse_trade, read_message)


def generic_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """:func:`parse_frame` without the fast path (the reference it is tested against)."""
    return read_frame(text, envelope, max_chars, read_message)


def read_message(data: object, envelope: Envelope) -> ParsedFrame:
    """What one frame's JSON value holds (a trade, a response, a control, or a kind K2 does
    not use)."""
    if not isinstance(data, dict):
        reject("expected a JSON object")
    return _message(data, envelope)


def _message(obj: dict[str, object], envelope: Envelope) -> ParsedFrame:
    stream: str | None = None
    if "stream" in obj and "data" in obj:
        raw_stream, payload = obj["stream"], obj["data"]
        if not isinstance(raw_stream, str) or not isinstance(payload, dict):
            reject("combined frame without a stream name and a data object")
        stream, obj = raw_stream, payload
    if "e" in obj:
        return _event(obj, envelope)
    if "id" in obj and ("result" in obj or "error" in obj):
        return _response(obj)
    if "code" in obj and "msg" in obj:  # an unwrapped error, as some docs show it
        return _error_control(obj, None)
    if stream is not None:
        return ParsedFrame(unknown_kind="stream:" + stream.partition("@")[2])
    return ParsedFrame(unknown_kind="object")


def _event(obj: dict[str, object], envelope: Envelope) -> ParsedFrame:
    kind = obj["e"]
    if not isinstance(kind, str):
        reject("event type is not a string")
    if kind in _REQUIRED:
        return ParsedFrame(trades=(_trade(kind, obj, envelope),))
    if kind == "serverShutdown":
        detail: dict[str, FieldValue] = {}
        event_time = obj.get("E")
        if isinstance(event_time, int):
            detail["event_time"] = event_time
        return ParsedFrame(controls=(Control(ControlKind.SERVER_SHUTDOWN, None, detail),))
    return ParsedFrame(unknown_kind="event:" + kind)


def _trade(kind: str, obj: dict[str, object], envelope: Envelope) -> RawTrade:
    for name, expected in _REQUIRED[kind].items():
        value = obj.get(name)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            reject(f"{kind} field {name} missing or not a {expected.__name__}")
    fields: dict[str, FieldValue] = {}
    for name, value in obj.items():
        if value is not None and not isinstance(value, str | int | bool):
            reject(f"{kind} field {name} has an unexpected value type")
        if isinstance(value, int) and not LONG_MIN <= value <= LONG_MAX:
            reject(f"{kind} field {name} is outside the signed 64-bit range")
        fields[name] = value
    symbol, key = obj["s"], obj[_TRADE_KEY[kind]]
    assert isinstance(symbol, str) and isinstance(key, int)  # checked above
    return RawTrade(EXCHANGE, symbol, key, fields, envelope)


def _response(obj: dict[str, object]) -> ParsedFrame:
    request_id = obj["id"]
    rid: FieldValue = request_id if isinstance(request_id, str | int) else None
    error = obj.get("error")
    if isinstance(error, dict):
        return _error_control(error, rid)
    result = obj.get("result")
    detail: dict[str, FieldValue] = {"id": rid}
    if isinstance(result, list):
        detail["result"] = ",".join(str(item) for item in result)
    return ParsedFrame(controls=(Control(ControlKind.ACK, None, detail),))


def _error_control(error: dict[str, object], request_id: FieldValue) -> ParsedFrame:
    code, msg = error.get("code"), error.get("msg")
    detail: dict[str, FieldValue] = {
        "code": code if isinstance(code, int) else None,
        "message": msg if isinstance(msg, str) else None,
        "id": request_id,
    }
    return ParsedFrame(controls=(Control(ControlKind.ERROR, None, detail),))
