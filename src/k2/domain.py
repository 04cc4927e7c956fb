"""The unified trade record (DESIGN.md §3) and canonical symbols.

Prices and sizes are :class:`~decimal.Decimal`; timestamps are timezone-aware UTC datetimes with
microsecond precision. Nothing here ever goes through a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, Inexact
from typing import Literal

Side = Literal["buy", "sell"]

# Legacy asset codes some exchanges still use on the wire, mapped to the codes users know.
CANONICAL_ASSETS = {"XBT": "BTC", "XDG": "DOGE"}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def canonical_asset(code: str) -> str:
    """``XBT`` → ``BTC``, ``XDG`` → ``DOGE``; other codes upper-cased and unchanged."""
    upper = code.upper()
    return CANONICAL_ASSETS.get(upper, upper)


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


_WIDE = Context(prec=100, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact])


def exact_product(left: Decimal, right: Decimal) -> Decimal:
    """``left * right`` exactly (a trade's quote quantity): a wide context that traps rounding,
    sized to fit the digits if it would round."""
    try:
        return _WIDE.multiply(left, right)
    except Inexact:
        digits = len(left.as_tuple().digits) + len(right.as_tuple().digits)
        return Context(prec=digits, Emax=MAX_EMAX, Emin=MIN_EMIN).multiply(left, right)


@dataclass(frozen=True, slots=True)
class Trade:
    """One public trade in K2's unified schema (silver and gold).

    This is the one definition of the unified trade: the Silver and Gold tables take their
    columns and types from these fields (``str`` → string, ``Decimal`` → decimal(38,18),
    ``datetime`` → timestamp in µs, ``X | None`` → nullable) and their comments from
    :data:`TRADE_FIELD_DOCS`.
    """

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


TRADE_FIELD_DOCS: dict[str, str] = {
    "message_id": "Deterministic id: exchange, native symbol and trade id (Kraken v1: a hash of "
    "the trade tuple and its occurrence); the same for every copy of the trade.",
    "exchange": "Exchange name: kraken, binance, ...",
    "symbol": "Canonical BASE/QUOTE, e.g. BTC/USD.",
    "base": "Canonical base asset, e.g. BTC.",
    "quote": "Canonical quote asset, e.g. USD.",
    "exchange_symbol": "Symbol as the exchange spells it.",
    "trade_id": "The exchange's trade id as text; null where the protocol has none (Kraken v1).",
    "price": "Price in quote units, exact.",
    "quantity": "Size in base units, exact.",
    "quote_quantity": "price × quantity, exact.",
    "side": "Taker side: buy or sell (Binance m=true means the taker sold).",
    "order_type": "Taker order type (limit, market) where the exchange says it.",
    "exchange_ts": "When the exchange matched the trade (UTC, µs).",
    "received_ts": "When K2 received the frame (UTC, µs).",
}


# OHLCV bar intervals K2 keeps (table gold.ohlcv_<name>), in seconds, smallest first. Each
# interval divides the next, so a bar is the union of whole bars of any smaller interval.
BAR_INTERVALS: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "1d": 86400,
}
