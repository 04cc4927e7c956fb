"""The common Coinbase ``market_trades`` message, decoded by msgspec into typed structs in one
C pass.

Only a message of exactly the documented shape takes this path (the five envelope keys,
``snapshot``/``update`` events, every trade with exactly its six text fields and a ``trade_id``
of plain digits within the signed 64-bit range); anything else returns None and the generic
parser of :mod:`k2.exchanges.coinbase.parse` decides, so both paths give the same result for
every message (tested on recorded and generated messages).
"""

from __future__ import annotations

import operator
from typing import Annotated, Literal

import msgspec

from k2.exchanges.base import (
    LONG_MAX,
    LONG_MIN,
    Envelope,
    FieldValue,
    ParsedFrame,
    RawTrade,
    trades_only,
)
from k2.exchanges.coinbase import EXCHANGE

_MAX_ID_DIGITS = 19  # LONG_MAX has 19 digits: longer text never fits
BY_TRADE_ID = operator.itemgetter(2)  # RawTrade.trade_key


class _Trade(msgspec.Struct, forbid_unknown_fields=True):
    trade_id: str
    product_id: str
    price: str
    size: str
    side: str
    time: str


class _Event(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["snapshot", "update"]
    trades: list[_Trade]


class _Message(msgspec.Struct, forbid_unknown_fields=True):
    channel: Literal["market_trades"]
    client_id: str
    timestamp: str
    sequence_num: Annotated[int, msgspec.Meta(ge=LONG_MIN, le=LONG_MAX)]
    events: list[_Event]


_DECODER: msgspec.json.Decoder[_Message] = msgspec.json.Decoder(_Message)


def parse_trades(text: str, envelope: Envelope) -> ParsedFrame | None:
    """The trades of a well-formed ``market_trades`` message (oldest first), or None for the
    generic parser to decide."""
    if not text.startswith('{"channel":"market_trades"'):
        return None
    try:
        message = _DECODER.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    sequence_num, timestamp = message.sequence_num, message.timestamp
    trades: list[RawTrade] = []
    append, new = trades.append, tuple.__new__
    for event in message.events:
        kind = event.type
        snapshot = kind == "snapshot"
        for item in event.trades:
            trade_id = item.trade_id
            if not (trade_id.isascii() and trade_id.isdigit() and len(trade_id) <= _MAX_ID_DIGITS):
                return None
            key = int(trade_id)
            if key > LONG_MAX:
                return None
            product_id = item.product_id
            fields: dict[str, FieldValue] = {
                "trade_id": trade_id,
                "product_id": product_id,
                "price": item.price,
                "size": item.size,
                "side": item.side,
                "time": item.time,
                "sequence_num": sequence_num,
                "timestamp": timestamp,
                "event_type": kind,
            }
            # tuple.__new__ is RawTrade(...) without the named tuple's Python-level constructor
            append(new(RawTrade, (EXCHANGE, product_id, key, fields, envelope, 0, snapshot)))
    in_id_order(trades)
    return trades_only(tuple(trades))


def in_id_order(trades: list[RawTrade]) -> None:
    """Put a message's trades in id order, in place: Coinbase sends the newest first, so the
    list is reversed (then usually in order already, which the sort finds in one C pass) and
    sorted stably by trade id; the one rule both parsing paths follow."""
    trades.reverse()
    trades.sort(key=BY_TRADE_ID)
