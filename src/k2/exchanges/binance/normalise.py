"""Binance raw trades (``@trade`` and ``@aggTrade``) → the unified :class:`~k2.domain.Trade`.

- Symbol: ``BTCUSDT`` has no separator, so base and quote come from the reference data
  (``exchangeInfo``) when given, else from a list of known quote assets (longest suffix wins).
- Side: ``m`` is "the buyer is the maker", so ``m=true`` means the taker sold.
- Price and quantity: the decimal strings as sent → :class:`~decimal.Decimal`;
  ``quote_quantity`` is their exact product.
- Time: ``T`` is ms by default and µs with ``timeUnit=MICROSECOND``; when the unit is not given
  it is told from the magnitude (µs values are ≥ 10**15 for any time after 2001-09-09, ms values
  stay below it until the year 33658).
- ``message_id``: ``binance:<symbol>:<t>`` for ``@trade`` and ``binance:<symbol>:agg-<a>`` for
  ``@aggTrade`` (aggregate ids are a different sequence and must never collide with trade ids).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, Inexact
from typing import Any, Literal

from k2.domain import Trade, canonical_asset, datetime_from_micros
from k2.errors import TradeInvalidError
from k2.exchanges import sql
from k2.exchanges.base import (
    FieldValue,
    RawTrade,
    SequenceTracker,
    SequenceVerdict,
    record_envelope,
)
from k2.exchanges.binance import EXCHANGE

__all__ = [
    "QUOTE_ASSETS",
    "SequenceTracker",
    "SequenceVerdict",
    "message_id",
    "normalise_trade",
    "raw_from_record",
    "split_symbol",
    "trade_from_record",
    "trade_time_micros",
]

# Quote assets Binance spot lists pairs against, for symbols missing from the reference data.
QUOTE_ASSETS = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "BIDR", "BKRW", "IDRT", "AEUR", "EURI",
    "BTC", "ETH", "BNB", "EUR", "GBP", "TRY", "BRL", "AUD", "RUB", "UAH", "ZAR", "PLN", "RON",
    "ARS", "JPY", "MXN", "COP", "CZK", "NGN", "DAI", "XRP", "TRX", "DOGE", "DOT", "PAX", "VAI",
)  # fmt: skip
_BY_LENGTH = sorted(QUOTE_ASSETS, key=len, reverse=True)
_DECIMAL = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_WIDE = Context(prec=100, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact])
_MICROS_FROM = 10**15

TimeUnit = Literal["MILLISECOND", "MICROSECOND"]


def split_symbol(symbol: str) -> tuple[str, str] | None:
    """``BTCUSDT`` → ``("BTC", "USDT")`` by the longest known quote suffix, or None."""
    upper = symbol.upper()
    for quote in _BY_LENGTH:
        if upper.endswith(quote) and len(upper) > len(quote):
            return upper[: -len(quote)], quote
    return None


def trade_time_micros(value: int, time_unit: TimeUnit | None = None) -> int:
    """``T`` (or ``E``) as µs since the epoch; the unit is the connection's ``timeUnit``."""
    if time_unit == "MICROSECOND" or (time_unit is None and value >= _MICROS_FROM):
        return value
    return value * 1000


def message_id(raw: RawTrade) -> str:
    """``binance:<symbol>:<t>`` for trades, ``binance:<symbol>:agg-<a>`` for aggregate trades."""
    prefix = "agg-" if raw.fields.get("e") == "aggTrade" else ""
    return f"{EXCHANGE}:{raw.native_symbol}:{prefix}{raw.trade_key}"


def _decimal(fields: Mapping[str, FieldValue], name: str) -> Decimal:
    text = fields.get(name)
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise TradeInvalidError(f"binance trade {name} {text!r} is not a decimal string", name)
    return Decimal(text)


def _exact_product(left: Decimal, right: Decimal) -> Decimal:
    """``left * right`` exactly: a wide context that traps rounding, sized to fit if it would."""
    try:
        return _WIDE.multiply(left, right)
    except Inexact:
        digits = len(left.as_tuple().digits) + len(right.as_tuple().digits)
        return Context(prec=digits, Emax=MAX_EMAX, Emin=MIN_EMIN).multiply(left, right)


def normalise_trade(
    raw: RawTrade,
    assets: Mapping[str, tuple[str, str]] | None = None,
    time_unit: TimeUnit | None = None,
) -> Trade:
    """Normalise a Binance raw trade; ``assets`` maps native symbols to (base, quote).

    Raises :class:`~k2.errors.TradeInvalidError` (with a ``reason``) when a value cannot be read.
    """
    fields = raw.fields
    pair = (assets or {}).get(raw.native_symbol) or split_symbol(raw.native_symbol)
    if pair is None:
        raise TradeInvalidError(
            f"binance symbol {raw.native_symbol!r} has no known quote", "symbol"
        )
    base, quote = canonical_asset(pair[0]), canonical_asset(pair[1])
    maker, trade_time = fields.get("m"), fields.get("T")
    if not isinstance(maker, bool):
        raise TradeInvalidError("binance trade m is not a boolean", "side")
    if not isinstance(trade_time, int) or isinstance(trade_time, bool) or trade_time < 0:
        raise TradeInvalidError("binance trade T is not a time", "time")
    if raw.trade_key is None:
        raise TradeInvalidError("binance trade without an id", "trade_id")
    price, quantity = _decimal(fields, "p"), _decimal(fields, "q")
    try:
        exchange_ts = datetime_from_micros(trade_time_micros(trade_time, time_unit))
    except OverflowError:
        raise TradeInvalidError(f"binance trade T {trade_time} is out of range", "time") from None
    return Trade(
        message_id=message_id(raw),
        exchange=EXCHANGE,
        symbol=f"{base}/{quote}",
        base=base,
        quote=quote,
        exchange_symbol=raw.native_symbol,
        trade_id=str(raw.trade_key),
        price=price,
        quantity=quantity,
        quote_quantity=_exact_product(price, quantity),
        side="sell" if maker else "buy",
        order_type=None,
        exchange_ts=exchange_ts,
        received_ts=datetime_from_micros(raw.envelope.received_us),
    )


# Record field names of the payload's one-letter keys (the raw Avro schema's renaming).
RECORD_FIELDS = {
    "e": "event_type",
    "E": "event_time",
    "s": "exchange_symbol",
    "t": "trade_id",
    "a": "agg_trade_id",
    "p": "price",
    "q": "quantity",
    "f": "first_trade_id",
    "l": "last_trade_id",
    "T": "trade_time",
    "m": "buyer_is_maker",
    "M": "ignore_m",
}


def raw_from_record(record: Mapping[str, Any]) -> RawTrade:
    """The raw trade a Kafka raw record (or a Bronze row) was made from: the payload under its
    one-letter keys (fields the record has as null are left out, as the exchange leaves them out)
    and the envelope.

    The inverse of the ingest's record for this exchange: ``raw_from_record(record)`` normalises to
    the same :class:`~k2.domain.Trade` as the raw trade the record was written from.
    """
    fields: dict[str, FieldValue] = {
        key: record[name] for key, name in RECORD_FIELDS.items() if record.get(name) is not None
    }
    key = "a" if fields.get("e") == "aggTrade" else "t"
    trade_id = fields.get(key)
    envelope = record_envelope(record)
    return RawTrade(
        exchange=EXCHANGE,
        native_symbol=str(record.get("exchange_symbol")),
        trade_key=trade_id
        if isinstance(trade_id, int) and not isinstance(trade_id, bool)
        else None,
        fields=fields,
        envelope=envelope,
        snapshot=bool(record.get("snapshot")),
    )


def trade_from_record(
    record: Mapping[str, Any], assets: Mapping[str, tuple[str, str]] | None = None
) -> Trade:
    """Normalise a Kafka raw record (or a Bronze row) of Binance in the record's own time unit;
    raises :class:`~k2.errors.TradeInvalidError` as :func:`normalise_trade` does."""
    unit = record.get("time_unit")
    time_unit: TimeUnit | None = unit if unit in ("MILLISECOND", "MICROSECOND") else None
    return normalise_trade(raw_from_record(record), assets, time_unit)


# ---------------------------------------------------------------------------------------------
# The same normalisation as Spark SQL over a Bronze row of this exchange (Silver runs these).
# Each expression mirrors the Python above and is held equal to it by the Silver differential
# test; their keys are the parts of a unified trade that differ between exchanges.

_UPPER = "upper(exchange_symbol)"
_SPLIT = [
    (f"endswith({_UPPER}, {sql.literal(quote)}) AND length({_UPPER}) > {len(quote)}", quote)
    for quote in _BY_LENGTH
]
_AGGREGATE = "event_type = 'aggTrade'"
_MICROS_UNIT = (
    "time_unit = 'MICROSECOND' OR (coalesce(time_unit, '') NOT IN ('MILLISECOND', 'MICROSECOND')"
    f" AND trade_time >= {_MICROS_FROM})"
)

SILVER_SQL: Mapping[str, str] = {
    "base": "CASE "
    + " ".join(
        f"WHEN {test} THEN substr({_UPPER}, 1, length({_UPPER}) - {len(q)})" for test, q in _SPLIT
    )
    + " END",
    "quote": "CASE "
    + " ".join(f"WHEN {test} THEN {sql.literal(q)}" for test, q in _SPLIT)
    + " END",
    "price": "price",
    "quantity": "quantity",
    "side": "CASE buyer_is_maker WHEN true THEN 'sell' WHEN false THEN 'buy' END",
    "order_type": "CAST(NULL AS STRING)",
    "exchange_us": f"CASE WHEN trade_time >= 0 THEN CASE WHEN {_MICROS_UNIT} THEN trade_time "
    "ELSE try_multiply(trade_time, 1000L) END END",
    "trade_id": f"CAST(CASE WHEN {_AGGREGATE} THEN agg_trade_id ELSE trade_id END AS STRING)",
    "needs_trade_id": "true",
    "message_id": f"concat('{EXCHANGE}:', exchange_symbol, ':', "
    f"CASE WHEN {_AGGREGATE} THEN concat('agg-', agg_trade_id) ELSE CAST(trade_id AS STRING) END)",
    "complete": "true",
}
