"""Pure parsing of OKX v5 WebSocket frames: trade pushes, events, ``pong``.

:func:`parse_frame` takes one received frame and its :class:`Envelope` and returns a
:class:`ParsedFrame`; it never raises. A ``trades-all`` (or single-trade ``trades``) push becomes
one :class:`RawTrade` per row whose ``fields`` are the row exactly as sent (strings stay strings,
``seqId`` an int) plus ``channel``, the push's channel; ``trade_key`` is ``tradeId`` read as an
integer (it must be written as one: digits, no leading zero, within a signed 64-bit long), so
the per-instrument id sequence can be checked. A ``trades`` row that aggregates several trades
(``count`` > 1) cannot be stored as one trade and is refused (dead-lettered with the reason).
Events (``subscribe``, ``unsubscribe``, ``error``, ``notice``) become :class:`Control`, and the
text ``pong`` a :class:`ControlKind.PONG`. The common push takes the typed fast path of msgspec.
"""

from __future__ import annotations

import msgspec

from k2.exchanges.base import (
    LONG_MAX,
    Control,
    ControlKind,
    Envelope,
    FieldValue,
    ParsedFrame,
    RawTrade,
    trades_only,
)
from k2.exchanges.okx import EXCHANGE
from k2.exchanges.okx.wire import ALL_TRADES, PONG, TRADES
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS, parse_with, read_frame, reject

_TRADE_CHANNELS = frozenset({ALL_TRADES, TRADES})
_STRINGS = ("instId", "tradeId", "px", "sz", "side", "ts")
_LONG_DIGITS = len(str(LONG_MAX))
PONG_FRAME = ParsedFrame(controls=(Control(ControlKind.PONG),))


def trade_key(trade_id: str) -> int | None:
    """``tradeId`` as an integer when it is written as one (digits, no leading zero) within the
    signed 64-bit range, else None."""
    size = len(trade_id)
    if not (trade_id.isascii() and trade_id.isdigit()) or (trade_id[0] == "0" and size > 1):
        return None
    if size < _LONG_DIGITS:  # fewer digits than LONG_MAX: always within it
        return int(trade_id)
    value = int(trade_id) if size == _LONG_DIGITS else LONG_MAX + 1
    return value if value <= LONG_MAX else None


# --- the fast path ----------------------------------------------------------------------------


# gc=False: the decoded structs hold only strings, so the collector need not track them.
class _Arg(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    channel: str
    instId: str  # noqa: N815 - the exchange's field name


class _Row(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    instId: str  # noqa: N815 - the exchange's field name
    tradeId: str  # noqa: N815 - the exchange's field name
    px: str
    sz: str
    side: str
    ts: str
    source: str | msgspec.UnsetType = msgspec.UNSET


class _Push(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    arg: _Arg
    data: list[_Row]


_DECODER: msgspec.json.Decoder[_Push] = msgspec.json.Decoder(_Push)


def parse_push(text: str, envelope: Envelope) -> ParsedFrame | None:
    """The trades of a well-formed ``trades-all`` push, or None for the generic reader."""
    if not text.startswith('{"arg":{"channel":"trades-all"'):
        return None
    try:
        push = _DECODER.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    trades = []
    new, unset = tuple.__new__, msgspec.UNSET
    for row in push.data:
        inst_id, trade_id, source = row.instId, row.tradeId, row.source
        key = trade_key(trade_id)
        if key is None:
            return None
        fields: dict[str, FieldValue] = {
            "instId": inst_id, "tradeId": trade_id, "px": row.px, "sz": row.sz,
            "side": row.side, "ts": row.ts, "channel": ALL_TRADES,
        }  # fmt: skip
        if source is not unset:
            fields["source"] = source
        trades.append(new(RawTrade, (EXCHANGE, inst_id, key, fields, envelope, 0, False)))
    return trades_only(tuple(trades))


# --- the generic path -------------------------------------------------------------------------


def parse_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """Parse one OKX frame: a trade push, an event, ``pong``, or anything else."""
    if text == PONG:
        return PONG_FRAME
    return parse_with(text, envelope, max_chars, parse_push, read_message)


def generic_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """:func:`parse_frame` without the fast path (the reference it is tested against)."""
    if text == PONG:
        return PONG_FRAME
    return read_frame(text, envelope, max_chars, read_message)


def read_message(data: object, envelope: Envelope) -> ParsedFrame:
    """What one frame's JSON value holds (trades, an event, or a kind K2 does not use)."""
    if not isinstance(data, dict):
        reject("expected a JSON object")
    if "event" in data:
        return _event(data)
    argument = data.get("arg")
    if isinstance(argument, dict) and "data" in data:
        channel = argument.get("channel")
        if channel in _TRADE_CHANNELS:
            return _push(str(channel), data["data"], envelope)
        return ParsedFrame(unknown_kind=f"channel:{channel}")
    return ParsedFrame(unknown_kind="object")


def _push(channel: str, rows: object, envelope: Envelope) -> ParsedFrame:
    if not isinstance(rows, list):
        reject(f"{channel} push without a data array")
    return ParsedFrame(trades=tuple(_trade(channel, row, envelope) for row in rows))


def _trade(channel: str, row: object, envelope: Envelope) -> RawTrade:
    if not isinstance(row, dict):
        reject(f"{channel} row is not an object")
    for name in _STRINGS:
        if not isinstance(row.get(name), str):
            reject(f"{channel} field {name} missing or not a string")
    fields: dict[str, FieldValue] = {}
    for name, value in row.items():
        if name == "seqId":
            if not isinstance(value, int) or isinstance(value, bool) or abs(value) > LONG_MAX:
                reject(f"{channel} field seqId is not a 64-bit integer")
        elif value is not None and not isinstance(value, str):
            reject(f"{channel} field {name} is not a string")
        fields[name] = value
    count = row.get("count")
    if count is not None and count != "1":
        reject(f"{channel} row aggregates {count!r} trades; K2 keeps one row per trade")
    key = trade_key(str(row["tradeId"]))
    if key is None:
        reject(f"{channel} tradeId {row['tradeId']!r} is not an integer id")
    fields["channel"] = channel
    return RawTrade(EXCHANGE, str(row["instId"]), key, fields, envelope)


def _event(obj: dict[str, object]) -> ParsedFrame:
    event = obj["event"]
    argument = obj.get("arg")
    inst_id = argument.get("instId") if isinstance(argument, dict) else None
    symbol = inst_id if isinstance(inst_id, str) else None
    detail: dict[str, FieldValue] = {}
    for name in ("id", "code", "msg", "connId"):
        value = obj.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool):
            detail[name] = value
    if isinstance(argument, dict) and isinstance(argument.get("channel"), str):
        detail["channel"] = argument["channel"]
    if "msg" in detail:
        detail["message"] = detail["msg"]
    kinds = {
        "subscribe": ControlKind.SUBSCRIBED,
        "unsubscribe": ControlKind.UNSUBSCRIBED,
        "error": ControlKind.ERROR,
        "notice": ControlKind.SERVER_SHUTDOWN,  # 64008: closing soon for a service upgrade
    }
    kind = kinds.get(event) if isinstance(event, str) else None
    if kind is None:
        return ParsedFrame(unknown_kind=f"event:{event}")
    return ParsedFrame(controls=(Control(kind, symbol, detail),))
