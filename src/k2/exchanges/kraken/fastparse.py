"""The common Kraken v2 trade frame, decoded by msgspec into typed structs in one C pass.

Only a frame of exactly the documented shape takes this path (``channel`` ``trade``, ``type``
snapshot or update, every trade with exactly its seven fields of the right types, prices and
sizes as JSON numbers in plain notation); anything else returns None and the generic parser of
:mod:`k2.exchanges.kraken.parse` decides, so both paths give the same result for every frame
(tested on recorded and generated frames). Prices and sizes are never numbers here: msgspec
hands over the number's own text (``msgspec.Raw``), which for a non-negative number in plain
notation is exactly the decimal text the generic path makes of it (a ``Decimal`` formatted
with ``"f"``); exponents, signs and very long numbers are left to the generic path.
"""

from __future__ import annotations

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
from k2.exchanges.kraken import EXCHANGE

# Plain text this long stays within the generic parser's 10**±60 magnitude limit.
_MAX_PLAIN_CHARS = 60
_DIGITS = frozenset("0123456789")


class _Trade(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str
    side: str
    price: msgspec.Raw
    qty: msgspec.Raw
    ord_type: str
    trade_id: Annotated[int, msgspec.Meta(ge=LONG_MIN, le=LONG_MAX)]
    timestamp: str


class _Frame(msgspec.Struct, forbid_unknown_fields=True):
    channel: Literal["trade"]
    type: Literal["snapshot", "update"]
    data: list[_Trade]


_DECODER: msgspec.json.Decoder[_Frame] = msgspec.json.Decoder(_Frame)


def parse_v2_trades(text: str, envelope: Envelope) -> ParsedFrame | None:
    """The trades of a well-formed v2 trade frame, or None for the generic parser to decide."""
    if not text.startswith('{"channel":"trade"'):
        return None
    try:
        frame = _DECODER.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    snapshot = frame.type == "snapshot"
    trades: list[RawTrade] = []
    append, digits, new = trades.append, _DIGITS, tuple.__new__
    for item in frame.data:
        price, qty = str(item.price, "ascii"), str(item.qty, "ascii")
        # plain notation, non-negative: no exponent, a digit first (not a sign or a quote)
        if (
            price[0] not in digits
            or qty[0] not in digits
            or "e" in price
            or "E" in price
            or "e" in qty
            or "E" in qty
            or len(price) > _MAX_PLAIN_CHARS
            or len(qty) > _MAX_PLAIN_CHARS
        ):
            return None
        symbol, trade_id = item.symbol, item.trade_id
        fields: dict[str, FieldValue] = {
            "symbol": symbol,
            "side": item.side,
            "price": price,
            "qty": qty,
            "ord_type": item.ord_type,
            "trade_id": trade_id,
            "timestamp": item.timestamp,
        }
        # tuple.__new__ is RawTrade(...) without the named tuple's Python-level constructor
        append(new(RawTrade, (EXCHANGE, symbol, trade_id, fields, envelope, 0, snapshot)))
    return trades_only(tuple(trades))
