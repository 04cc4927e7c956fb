"""Pure parsing of Kraken WebSocket frames (v1 arrays and events, v2 objects).

Every function takes one received frame (text) and its :class:`Envelope` and returns a
:class:`ParsedFrame`; none of them raises on any input. Trades keep their fields exactly as sent:
v1 rows get the documented names (price, volume, time, side, order_type, misc) and stay strings;
v2 objects are read with ``parse_float=Decimal`` (never float; the common trade frame first
takes the typed fast path of :mod:`k2.exchanges.kraken.fastparse`, same result) and their
``price``/``qty`` are kept as the exact decimal text of the JSON number; ids and u64 connection
ids stay exact ints.
Frames K2 does not use (book, ticker, ...) are reported as ``unknown_kind``; frames of the wrong
shape, invalid JSON or absurd size become ``malformed`` with their raw text.
"""

from __future__ import annotations

from decimal import Decimal

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
from k2.exchanges.kraken import EXCHANGE
from k2.exchanges.kraken.fastparse import parse_v2_trades
from k2.exchanges.kraken.wire import V1_TRADE_FIELDS, V2_DECIMAL_FIELDS, V2_TRADE_FIELDS
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS, parse_with, read_frame, reject

_MAX_DIGITS_EXPONENT = 60  # |exponent| beyond this is no price or size; refuse, do not expand


def decimal_text(value: Decimal | int) -> str:
    """The exact decimal text of a JSON number read as Decimal (plain notation, zeros kept).

    A magnitude beyond 10**±60 is refused rather than expanded (``1e999999999`` would otherwise
    become a billion characters); within it the text is never longer than the frame allows.
    """
    if isinstance(value, int):
        return str(value)
    if abs(value.adjusted()) > _MAX_DIGITS_EXPONENT:
        reject(f"number {value} is out of range")
    return format(value, "f")


def _scalar(value: object) -> FieldValue:
    """A JSON value as a field value; Decimal becomes its text, nested values are refused."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, Decimal):
        return decimal_text(value)
    reject("unexpected nested value in a trade")


def _details(obj: dict[str, object], **names: str) -> dict[str, FieldValue]:
    """``{detail_name: obj[wire_name]}`` for the scalar values present."""
    detail: dict[str, FieldValue] = {}
    for detail_name, wire_name in names.items():
        value = obj.get(wire_name)
        if value is not None and not isinstance(value, dict | list):
            detail[detail_name] = _scalar(value)
    return detail


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


# --- v1 -------------------------------------------------------------------------------------


def parse_v1_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """Parse one Kraken v1 frame (trade array, event object, or anything else)."""
    return parse_with(text, envelope, max_chars, None, read_v1_message)


def read_v1_message(data: object, envelope: Envelope) -> ParsedFrame:
    """What one v1 frame's JSON value holds (trades, a control, or a kind K2 does not use)."""
    if isinstance(data, list):
        return _v1_array(data, envelope)
    if isinstance(data, dict):
        return _v1_event(data)
    reject("expected a JSON array or object")


def _v1_array(data: list[object], envelope: Envelope) -> ParsedFrame:
    if len(data) < 3 or not isinstance(data[-2], str) or not isinstance(data[-1], str):
        reject("array frame without channel name and pair")
    channel, pair = data[-2], data[-1]
    if channel != "trade":
        return ParsedFrame(unknown_kind="channel:" + channel.split("-")[0])
    if len(data) != 4 or not isinstance(data[1], list):
        reject("trade frame is not [channel_id, [trades], 'trade', pair]")
    trades = []
    for row in data[1]:
        if not isinstance(row, list) or len(row) != len(V1_TRADE_FIELDS):
            reject("trade row is not an array of 6 values")
        if not all(isinstance(value, str) for value in row):
            reject("trade row values are not all strings")
        fields: dict[str, FieldValue] = dict(zip(V1_TRADE_FIELDS, row, strict=True))
        trades.append(RawTrade(EXCHANGE, pair, None, fields, envelope))
    return ParsedFrame(trades=tuple(trades))


def _v1_event(obj: dict[str, object]) -> ParsedFrame:
    event = obj.get("event")
    if event is None:
        if "Error" in obj:  # rate limit: {"Error": "Exceeded msg rate"}
            return _control(ControlKind.ERROR, None, _details(obj, message="Error"))
        return ParsedFrame(unknown_kind="object")
    if not isinstance(event, str):
        reject("event is not a string")
    if event == "heartbeat":
        return _control(ControlKind.HEARTBEAT)
    if event == "systemStatus":
        detail = _details(obj, connection_id="connectionID", status="status", version="version")
        return _control(ControlKind.STATUS, None, detail)
    if event == "subscriptionStatus":
        return _v1_subscription_status(obj)
    if event == "pong":
        return _control(ControlKind.PONG, None, _details(obj, reqid="reqid"))
    if event == "error":
        detail = _details(obj, message="errorMessage", reqid="reqid")
        return _control(ControlKind.ERROR, None, detail)
    return ParsedFrame(unknown_kind="event:" + event)


def _v1_subscription_status(obj: dict[str, object]) -> ParsedFrame:
    pair = _str_or_none(obj.get("pair"))
    status = obj.get("status")
    detail = _details(
        obj, channel_name="channelName", channel_id="channelID", reqid="reqid", status="status"
    )
    if status == "subscribed":
        return _control(ControlKind.SUBSCRIBED, pair, detail)
    if status == "unsubscribed":
        return _control(ControlKind.UNSUBSCRIBED, pair, detail)
    if status == "error":
        detail.update(_details(obj, message="errorMessage"))
        return _control(ControlKind.SUBSCRIPTION_REJECTED, pair, detail)
    return ParsedFrame(unknown_kind="subscriptionStatus:" + str(status))


def _control(
    kind: ControlKind, symbol: str | None = None, detail: dict[str, FieldValue] | None = None
) -> ParsedFrame:
    return ParsedFrame(controls=(Control(kind, symbol, detail or {}),))


# --- v2 -------------------------------------------------------------------------------------


def parse_v2_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """Parse one Kraken v2 frame (channel message, method response, or anything else)."""
    return parse_with(text, envelope, max_chars, parse_v2_trades, read_v2_message)


def generic_v2_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """:func:`parse_v2_frame` without the fast path (the reference it is tested against)."""
    return read_frame(text, envelope, max_chars, read_v2_message)


def read_v2_message(data: object, envelope: Envelope) -> ParsedFrame:
    """What one v2 frame's JSON value holds (trades, a control, or a kind K2 does not use)."""
    if not isinstance(data, dict):
        reject("expected a JSON object")
    if "channel" in data:
        return _v2_channel(data, envelope)
    if "method" in data:
        return _v2_method(data)
    if "error" in data or "Error" in data:
        message = "error" if "error" in data else "Error"
        return _control(ControlKind.ERROR, None, _details(data, message=message))
    return ParsedFrame(unknown_kind="object")


def _v2_channel(obj: dict[str, object], envelope: Envelope) -> ParsedFrame:
    channel = obj["channel"]
    if not isinstance(channel, str):
        reject("channel is not a string")
    if channel == "trade":
        return _v2_trades(obj, envelope)
    if channel == "heartbeat":
        return _control(ControlKind.HEARTBEAT)
    if channel == "status":
        data = obj.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            reject("status message without data")
        detail = _details(
            data[0],
            connection_id="connection_id",
            system="system",
            version="version",
            api_version="api_version",
        )
        return _control(ControlKind.STATUS, None, detail)
    return ParsedFrame(unknown_kind="channel:" + channel)


def _v2_trades(obj: dict[str, object], envelope: Envelope) -> ParsedFrame:
    kind = obj.get("type")
    if kind not in ("snapshot", "update"):
        return ParsedFrame(unknown_kind="trade:" + str(kind))
    data = obj.get("data")
    if not isinstance(data, list):
        reject("trade message without a data array")
    snapshot = kind == "snapshot"
    trades = []
    for item in data:
        if not isinstance(item, dict):
            reject("trade is not an object")
        fields = _v2_fields(item)
        symbol, trade_id = fields["symbol"], fields["trade_id"]
        assert isinstance(symbol, str) and isinstance(trade_id, int)  # checked by _v2_fields
        trades.append(RawTrade(EXCHANGE, symbol, trade_id, fields, envelope, snapshot=snapshot))
    return ParsedFrame(trades=tuple(trades))


def _number_text(item: dict[str, object], name: str) -> str:
    value = item[name]
    if not isinstance(value, Decimal | int) or isinstance(value, bool):
        reject(name + " is not a number")
    return decimal_text(value)


def _v2_fields(item: dict[str, object]) -> dict[str, FieldValue]:
    for name in V2_TRADE_FIELDS:
        if name not in item:
            reject("trade without " + name)
    for name in ("symbol", "side", "ord_type", "timestamp"):
        if not isinstance(item[name], str):
            reject(name + " is not a string")
    trade_id = item["trade_id"]
    if not isinstance(trade_id, int) or isinstance(trade_id, bool):
        reject("trade_id is not an integer")
    if not LONG_MIN <= trade_id <= LONG_MAX:
        reject("trade_id is outside the signed 64-bit range")
    # price and qty are always decimal text, also when an integral one arrives as a JSON int
    return {
        name: _number_text(item, name) if name in V2_DECIMAL_FIELDS else _scalar(value)
        for name, value in item.items()
    }


def _v2_method(obj: dict[str, object]) -> ParsedFrame:
    method = obj["method"]
    if not isinstance(method, str):
        reject("method is not a string")
    success = obj.get("success")
    result = obj.get("result")
    result = result if isinstance(result, dict) else {}
    detail = _details(obj, req_id="req_id", message="error")
    detail.update(_details(result, channel="channel", snapshot="snapshot"))
    symbol = _str_or_none(obj.get("symbol")) or _str_or_none(result.get("symbol"))
    if method in ("subscribe", "unsubscribe") and success is True:
        kind = ControlKind.SUBSCRIBED if method == "subscribe" else ControlKind.UNSUBSCRIBED
        return _control(kind, symbol, detail)
    if method == "subscribe" and success is False:
        return _control(ControlKind.SUBSCRIPTION_REJECTED, symbol, detail)
    if success is False:
        detail["method"] = method
        return _control(ControlKind.ERROR, symbol, detail)
    if method == "pong":
        return _control(ControlKind.PONG, None, _details(obj, req_id="req_id"))
    return ParsedFrame(unknown_kind="method:" + method)


def parse_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """Parse a frame with the protocol named by ``envelope.protocol`` (v1 or v2)."""
    if envelope.protocol == "kraken-v1":
        return parse_v1_frame(text, envelope, max_chars)
    return parse_v2_frame(text, envelope, max_chars)
