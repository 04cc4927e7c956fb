"""The common Bybit spot trade push, decoded by msgspec into typed structs in one C pass.

Only a push of exactly the shape Bybit's spot feed sends takes this path (``topic``, ``ts``,
``type`` and ``data``, every element with exactly the nine spot fields ``i``, ``T``, ``p``,
``v``, ``S``, ``seq``, ``s``, ``BT``, ``RPI`` of the right types, each ``s`` the topic's
symbol); anything else returns None and the generic parser of
:mod:`k2.exchanges.bybit.parse` decides, so both paths give the same result for every frame
(tested on recorded and generated frames).
"""

from __future__ import annotations

from typing import Annotated

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
from k2.exchanges.bybit import EXCHANGE
from k2.exchanges.bybit.wire import TOPIC_PREFIX

Long = Annotated[int, msgspec.Meta(ge=LONG_MIN, le=LONG_MAX)]  # as the generic parser checks
_PREFIX = '{"topic":"' + TOPIC_PREFIX
_MAX_ID_DIGITS = len(str(LONG_MAX))


def trade_key(trade_id: str) -> int | None:
    """The id as an integer when it is a decimal integer a long holds (spot ids are numeric
    strings), else None (linear ids are UUIDs)."""
    if trade_id.isascii() and trade_id.isdigit() and len(trade_id) <= _MAX_ID_DIGITS:
        value = int(trade_id)
        return value if value <= LONG_MAX else None
    return None


class _Trade(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    i: str
    T: Long
    p: str
    v: str
    S: str
    seq: Long
    s: str
    BT: bool
    RPI: bool


class _Push(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    topic: str
    ts: Long
    type: str
    data: list[_Trade]


_DECODER: msgspec.json.Decoder[_Push] = msgspec.json.Decoder(_Push)


def parse_trades(text: str, envelope: Envelope) -> ParsedFrame | None:
    """The trades of a well-formed spot trade push, or None for the generic parser to decide."""
    if not text.startswith(_PREFIX):
        return None
    try:
        push = _DECODER.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    topic = push.topic
    symbol = topic[len(TOPIC_PREFIX) :]
    if not symbol or not topic.startswith(TOPIC_PREFIX):
        return None
    ts, kind = push.ts, push.type
    trades: list[RawTrade] = []
    append, new, digits = trades.append, tuple.__new__, _MAX_ID_DIGITS
    for item in push.data:
        trade_id = item.i
        if item.s != symbol:
            return None
        key: int | None = None
        if trade_id.isdigit() and trade_id.isascii() and len(trade_id) <= digits:  # trade_key()
            key = int(trade_id)
            if key > LONG_MAX:
                key = None
        fields: dict[str, FieldValue] = {
            "i": trade_id, "T": item.T, "p": item.p, "v": item.v, "S": item.S,
            "seq": item.seq, "s": symbol, "BT": item.BT, "RPI": item.RPI, "ts": ts, "type": kind,
        }  # fmt: skip
        # tuple.__new__ is RawTrade(...) without the named tuple's Python-level constructor
        append(new(RawTrade, (EXCHANGE, symbol, key, fields, envelope, 0, False)))
    return trades_only(tuple(trades))
