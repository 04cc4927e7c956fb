"""The common Kraken v2 trade frame, decoded by msgspec into typed structs in one C pass.

Only a frame of exactly the documented shape takes this path (``channel`` ``trade``, ``type``
snapshot or update, every trade with exactly its seven fields of the right types, prices and
sizes as JSON numbers within range); anything else returns None and the generic parser of
:mod:`k2.exchanges.kraken.parse` decides, so both paths give the same result for every frame
(tested on recorded and generated frames). Numbers are decoded as :class:`~decimal.Decimal`,
never float, and kept as their exact decimal text.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from k2.exchanges.base import LONG_MAX, LONG_MIN, Envelope, FieldValue, ParsedFrame, RawTrade
from k2.exchanges.kraken import EXCHANGE

_MAX_DIGITS_EXPONENT = 60  # as the generic parser: beyond this no price or size


class _Trade(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
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
    trades = []
    for item in frame.data:
        price, qty = item.price, item.qty
        if (
            abs(price.adjusted()) > _MAX_DIGITS_EXPONENT
            or abs(qty.adjusted()) > _MAX_DIGITS_EXPONENT
        ):
            return None
        fields: dict[str, FieldValue] = {
            "symbol": item.symbol,
            "side": item.side,
            "price": format(price, "f"),
            "qty": format(qty, "f"),
            "ord_type": item.ord_type,
            "trade_id": item.trade_id,
            "timestamp": item.timestamp,
        }
        trades.append(
            RawTrade(EXCHANGE, item.symbol, item.trade_id, fields, envelope, snapshot=snapshot)
        )
    return ParsedFrame(trades=tuple(trades))
