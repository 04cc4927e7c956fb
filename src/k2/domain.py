"""The unified trade record (DESIGN.md §3) and canonical symbols.

Prices and sizes are :class:`~decimal.Decimal`; timestamps are timezone-aware UTC datetimes with
microsecond precision. Nothing here ever goes through a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

Side = Literal["buy", "sell"]

# Legacy asset codes some venues still use on the wire, mapped to the codes users know.
_CANONICAL_ASSETS = {"XBT": "BTC", "XDG": "DOGE"}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def canonical_asset(code: str) -> str:
    """``XBT`` → ``BTC``, ``XDG`` → ``DOGE``; other codes upper-cased and unchanged."""
    upper = code.upper()
    return _CANONICAL_ASSETS.get(upper, upper)


def canonical_symbol(base: str, quote: str) -> str:
    """The canonical ``BASE/QUOTE`` form of a pair."""
    return f"{canonical_asset(base)}/{canonical_asset(quote)}"


def datetime_from_micros(micros: int) -> datetime:
    """UTC datetime from integer microseconds since the epoch (exact, no float)."""
    return EPOCH + timedelta(microseconds=micros)


def micros_from_datetime(value: datetime) -> int:
    """Integer microseconds since the epoch of an aware datetime (exact, no float)."""
    delta = value.astimezone(UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class Trade:
    """One public trade in K2's unified schema (silver and gold)."""

    message_id: str
    exchange: str
    symbol: str
    base: str
    quote: str
    exchange_symbol: str
    trade_id: str | None
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal
    side: Side
    order_type: str | None
    exchange_ts: datetime
    received_ts: datetime
