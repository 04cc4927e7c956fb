"""The common Binance trade frame, decoded by msgspec into typed structs in one C pass.

Only a payload of exactly the documented shape takes this path (``@trade`` with its nine fields
or ``@aggTrade`` with its eleven, each of the right type, raw or wrapped in a combined-stream
``{"stream","data"}`` object); anything else returns None and the generic parser of
:mod:`k2.exchanges.binance.parse` decides, so both paths give the same result for every frame
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
from k2.exchanges.binance import EXCHANGE

Long = Annotated[int, msgspec.Meta(ge=LONG_MIN, le=LONG_MAX)]  # as the generic parser checks


class _Trade(msgspec.Struct, tag_field="e", tag="trade", forbid_unknown_fields=True):
    E: Long
    s: str
    t: Long
    p: str
    q: str
    T: Long
    m: bool
    M: bool


class _AggTrade(msgspec.Struct, tag_field="e", tag="aggTrade", forbid_unknown_fields=True):
    E: Long
    s: str
    a: Long
    p: str
    q: str
    f: Long
    l: Long  # noqa: E741 - the exchange's field name
    T: Long
    m: bool
    M: bool


class _Combined(msgspec.Struct, forbid_unknown_fields=True):
    stream: str
    data: _Trade | _AggTrade


_COMBINED: msgspec.json.Decoder[_Combined] = msgspec.json.Decoder(_Combined)
_RAW: msgspec.json.Decoder[_Trade | _AggTrade] = msgspec.json.Decoder(_Trade | _AggTrade)


def parse_trade(text: str, envelope: Envelope) -> ParsedFrame | None:
    """The trade of a well-formed trade frame, or None for the generic parser to decide."""
    try:
        if text.startswith('{"stream"'):
            payload = _COMBINED.decode(text).data
        elif text.startswith('{"e":"'):
            payload = _RAW.decode(text)
        else:
            return None
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if isinstance(payload, _Trade):
        fields: dict[str, FieldValue] = {
            "e": "trade", "E": payload.E, "s": payload.s, "t": payload.t, "p": payload.p,
            "q": payload.q, "T": payload.T, "m": payload.m, "M": payload.M,
        }  # fmt: skip
        key = payload.t
    else:
        agg = payload
        fields = {
            "e": "aggTrade", "E": agg.E, "s": agg.s, "a": agg.a, "p": agg.p, "q": agg.q,
            "f": agg.f, "l": agg.l, "T": agg.T, "m": agg.m, "M": agg.M,
        }  # fmt: skip
        key = agg.a
    # tuple.__new__ builds the named tuples without their Python-level constructors
    trade = tuple.__new__(RawTrade, (EXCHANGE, payload.s, key, fields, envelope, 0, False))
    return trades_only((trade,))
