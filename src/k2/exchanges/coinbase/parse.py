"""Pure parsing of Coinbase Advanced Trade WebSocket messages.

:func:`parse_frame` takes one received message (text) and its :class:`Envelope` and returns a
:class:`ParsedFrame`; it never raises on any input. Every trade of a ``market_trades`` message
becomes a :class:`RawTrade` whose ``fields`` are the trade object exactly as sent (``trade_id``,
``price``, ``size`` and ``time`` stay text; a JSON number where Coinbase sends text is refused,
so a float can never appear) plus what the record keeps of the message: its ``sequence_num``,
``timestamp`` and the event's ``type`` (``snapshot`` trades are marked as such). ``trade_id`` is
a per-product sequence number sent as text; one that is not plain digits within the signed
64-bit range makes the message malformed (dead-lettered with its text). Coinbase lists a
message's trades newest first; they are handed on in id order, oldest first, the order the
per-product id sequence is checked in. ``subscriptions``, ``heartbeats`` and ``error`` messages
become :class:`Control`; other channels are ``unknown_kind``. The common trade message first
takes the typed fast path of :mod:`k2.exchanges.coinbase.fastparse` (same result).
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
from k2.exchanges.coinbase import EXCHANGE
from k2.exchanges.coinbase.fastparse import in_id_order, parse_trades
from k2.exchanges.coinbase.wire import HEARTBEATS, MARKET_TRADES, SUBSCRIPTIONS, TRADE_FIELDS
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS, parse_with, read_frame, reject

_TRADE_ID = re.compile(r"[0-9]+", re.ASCII)
_EVENT_TYPES = ("snapshot", "update")


def parse_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """Parse one Coinbase Advanced Trade message (trades, subscriptions, heartbeats, error)."""
    return parse_with(text, envelope, max_chars, parse_trades, read_message)


def generic_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """:func:`parse_frame` without the fast path (the reference it is tested against)."""
    return read_frame(text, envelope, max_chars, read_message)


def trade_key(trade_id: object) -> int:
    """The integer of a ``trade_id`` sent as text; refuses anything but plain digits that fit
    a signed 64-bit integer (the raw record keeps ids as Avro longs)."""
    if not isinstance(trade_id, str) or not _TRADE_ID.fullmatch(trade_id):
        reject("trade_id is not text of digits")
    key = int(trade_id)
    if key > LONG_MAX:
        reject("trade_id is outside the signed 64-bit range")
    return key


def read_message(data: object, envelope: Envelope) -> ParsedFrame:
    """What one message's JSON value holds (trades, a control, or a kind K2 does not use)."""
    if not isinstance(data, dict):
        reject("expected a JSON object")
    channel = data.get("channel")
    if channel is None:
        if data.get("type") == "error":
            return _control(ControlKind.ERROR, _details(data, "message", "reason"))
        return ParsedFrame(unknown_kind="object")
    if not isinstance(channel, str):
        reject("channel is not a string")
    sequence_num, timestamp = _envelope(data)
    if channel == MARKET_TRADES:
        return _trades(data, sequence_num, timestamp, envelope)
    detail: dict[str, FieldValue] = {"sequence_num": sequence_num}
    events = data.get("events")
    first = events[0] if isinstance(events, list) and events else {}
    if not isinstance(first, dict):
        reject(f"{channel} event is not an object")
    if channel == HEARTBEATS:
        detail.update(_details(first, "heartbeat_counter", "current_time"))
        return _control(ControlKind.HEARTBEAT, detail)
    if channel == SUBSCRIPTIONS:
        subscribed = first.get("subscriptions")
        if not isinstance(subscribed, dict):
            reject("subscriptions message without a subscriptions object")
        for name, products in subscribed.items():
            if isinstance(products, list):
                detail[str(name)] = ",".join(str(p) for p in products)
        return _control(ControlKind.SUBSCRIBED, detail)
    return ParsedFrame(unknown_kind="channel:" + channel)


def _envelope(data: dict[str, object]) -> tuple[int | None, str | None]:
    """The message's ``sequence_num`` and ``timestamp`` (None where absent)."""
    sequence_num, timestamp = data.get("sequence_num"), data.get("timestamp")
    if sequence_num is not None and (
        not isinstance(sequence_num, int)
        or isinstance(sequence_num, bool)
        or not LONG_MIN <= sequence_num <= LONG_MAX
    ):
        reject("sequence_num is not a 64-bit integer")
    if timestamp is not None and not isinstance(timestamp, str):
        reject("timestamp is not a string")
    return sequence_num, timestamp


def _trades(
    data: dict[str, object], sequence_num: int | None, timestamp: str | None, envelope: Envelope
) -> ParsedFrame:
    events = data.get("events")
    if not isinstance(events, list):
        reject("market_trades message without an events array")
    trades: list[RawTrade] = []
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("trades"), list):
            reject("market_trades event without a trades array")
        kind = event.get("type")
        if kind not in _EVENT_TYPES:
            return ParsedFrame(unknown_kind=f"market_trades:{kind}")
        message: dict[str, FieldValue] = {
            "sequence_num": sequence_num,
            "timestamp": timestamp,
            "event_type": str(kind),
        }
        for item in event["trades"]:
            trades.append(_trade(item, message, envelope, kind == "snapshot"))
    in_id_order(trades)
    return ParsedFrame(trades=tuple(trades))


def _trade(
    item: object, message: dict[str, FieldValue], envelope: Envelope, snapshot: bool
) -> RawTrade:
    if not isinstance(item, dict):
        reject("trade is not an object")
    for name in TRADE_FIELDS:
        if not isinstance(item.get(name), str):
            reject(f"trade field {name} missing or not a string")
    fields: dict[str, FieldValue] = {}
    for name, value in item.items():
        if value is not None and not isinstance(value, str | bool | int):
            reject(f"trade field {name} has an unexpected value type")
        if isinstance(value, int) and not LONG_MIN <= value <= LONG_MAX:
            reject(f"trade field {name} is outside the signed 64-bit range")
        fields[name] = value
    fields.update(message)
    key = trade_key(item["trade_id"])
    return RawTrade(EXCHANGE, item["product_id"], key, fields, envelope, snapshot=snapshot)


def _details(obj: dict[str, object], *names: str) -> dict[str, FieldValue]:
    return {
        name: value
        for name in names
        if isinstance(value := obj.get(name), str | int | bool) and value is not None
    }


def _control(kind: ControlKind, detail: dict[str, FieldValue]) -> ParsedFrame:
    return ParsedFrame(controls=(Control(kind, None, detail),))
