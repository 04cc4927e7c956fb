"""Bybit spot raw trades (``publicTrade`` push or ``recent-trade`` backfill) → the unified
:class:`~k2.domain.Trade`.

- Symbol: ``BTCUSDT`` has no separator, so base and quote come from the reference data
  (``instruments-info``) when given, else from a list of quote coins Bybit spot lists pairs
  against (the longest suffix wins).
- Side: ``S`` is "Side of taker. ``Buy``, ``Sell``" (``docs/v5/websocket/public/trade.mdx`` of
  the ``bybit-exchange/docs`` repository; ``recent-trade``'s ``side`` is "Side of taker" too),
  so ``Buy`` → ``buy`` and ``Sell`` → ``sell``, unchanged.
- Price and quantity: ``p`` and ``v``, the decimal strings as sent → :class:`~decimal.Decimal`;
  ``quote_quantity`` is their exact product.
- Time: ``T``, the fill time in ms → µs.
- ``message_id``: ``bybit:<symbol>:<i>``, the id exactly as sent. Spot ids are numeric strings
  from one counter shared by every symbol, unique across symbols; the symbol is in the id all
  the same, as for every exchange.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, Inexact
from typing import Any, cast

from k2.domain import Trade, canonical_asset, datetime_from_micros
from k2.errors import TradeInvalidError
from k2.exchanges import sql
from k2.exchanges.base import FieldValue, RawTrade, record_envelope
from k2.exchanges.bybit import EXCHANGE
from k2.exchanges.bybit.fastparse import trade_key

__all__ = [
    "QUOTE_COINS",
    "RECORD_FIELDS",
    "SILVER_SQL",
    "message_id",
    "normalise_trade",
    "raw_from_record",
    "split_symbol",
    "trade_from_record",
]

# Quote coins Bybit spot lists pairs against, for symbols missing from the reference data.
QUOTE_COINS = (
    "USDT", "USDC", "USDE", "USD1", "FDUSD", "RLUSD", "USDQ", "USDR", "BTC", "ETH", "EUR",
    "BRL", "PLN", "TRY", "DAI", "MNT", "BRZ", "EURI", "KZT",
)  # fmt: skip
_BY_LENGTH = sorted(QUOTE_COINS, key=len, reverse=True)
SIDES = {"Buy": "buy", "Sell": "sell"}
_DECIMAL = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_WIDE = Context(prec=100, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact])


def split_symbol(symbol: str) -> tuple[str, str] | None:
    """``BTCUSDT`` → ``("BTC", "USDT")`` by the longest known quote suffix, or None."""
    upper = symbol.upper()
    for quote in _BY_LENGTH:
        if upper.endswith(quote) and len(upper) > len(quote):
            return upper[: -len(quote)], quote
    return None


def message_id(raw: RawTrade) -> str:
    """``bybit:<symbol>:<i>``, the trade id as sent."""
    return f"{EXCHANGE}:{raw.native_symbol}:{raw.fields.get('i')}"


def _decimal(fields: Mapping[str, FieldValue], name: str) -> Decimal:
    text = fields.get(name)
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise TradeInvalidError(f"bybit trade {name} {text!r} is not a decimal string", name)
    return Decimal(text)


def _exact_product(left: Decimal, right: Decimal) -> Decimal:
    """``left * right`` exactly: a wide context that traps rounding, sized to fit if it would."""
    try:
        return _WIDE.multiply(left, right)
    except Inexact:
        digits = len(left.as_tuple().digits) + len(right.as_tuple().digits)
        return Context(prec=digits, Emax=MAX_EMAX, Emin=MIN_EMIN).multiply(left, right)


def normalise_trade(raw: RawTrade, assets: Mapping[str, tuple[str, str]] | None = None) -> Trade:
    """Normalise a Bybit raw trade; ``assets`` maps native symbols to (base, quote).

    Raises :class:`~k2.errors.TradeInvalidError` (with a ``reason``) when a value cannot be read.
    """
    fields = raw.fields
    pair = (assets or {}).get(raw.native_symbol) or split_symbol(raw.native_symbol)
    if pair is None:
        raise TradeInvalidError(f"bybit symbol {raw.native_symbol!r} has no known quote", "symbol")
    base, quote = canonical_asset(pair[0]), canonical_asset(pair[1])
    side, trade_time, trade_id = SIDES.get(str(fields.get("S"))), fields.get("T"), fields.get("i")
    if side is None:
        raise TradeInvalidError(f"bybit trade S {fields.get('S')!r} is not Buy or Sell", "side")
    if not isinstance(trade_time, int) or isinstance(trade_time, bool) or trade_time < 0:
        raise TradeInvalidError("bybit trade T is not a time", "time")
    if not isinstance(trade_id, str) or not trade_id:
        raise TradeInvalidError("bybit trade without an id", "trade_id")
    price, quantity = _decimal(fields, "p"), _decimal(fields, "v")
    try:
        exchange_ts = datetime_from_micros(trade_time * 1000)
    except OverflowError:
        raise TradeInvalidError(f"bybit trade T {trade_time} is out of range", "time") from None
    return Trade(
        message_id=message_id(raw),
        exchange=EXCHANGE,
        symbol=f"{base}/{quote}",
        base=base,
        quote=quote,
        exchange_symbol=raw.native_symbol,
        trade_id=trade_id,
        price=price,
        quantity=quantity,
        quote_quantity=_exact_product(price, quantity),
        side=cast(Any, side),
        order_type=None,
        exchange_ts=exchange_ts,
        received_ts=datetime_from_micros(raw.envelope.received_us),
    )


# Record field names of the trade's keys and the frame's (the raw Avro schema's renaming:
# Spark resolves names case-insensitively, so ``s`` and ``S`` cannot both be columns).
RECORD_FIELDS = {
    "s": "exchange_symbol",
    "i": "trade_id",
    "T": "trade_time",
    "p": "price",
    "v": "size",
    "S": "side",
    "seq": "seq",
    "BT": "block_trade",
    "RPI": "rpi",
    "L": "tick_direction",
    "ts": "frame_ts",
    "type": "frame_type",
}


def raw_from_record(record: Mapping[str, Any]) -> RawTrade:
    """The raw trade a Kafka raw record (or a Bronze row) was made from: the trade under its
    own keys (fields the record has as null are left out, as the exchange leaves them out) and
    the envelope; ``raw_from_record(record)`` normalises to the same trade as the raw trade
    the record was written from."""
    fields: dict[str, FieldValue] = {
        key: record[name] for key, name in RECORD_FIELDS.items() if record.get(name) is not None
    }
    trade_id = fields.get("i")
    envelope = record_envelope(record)
    return RawTrade(
        exchange=EXCHANGE,
        native_symbol=str(record.get("exchange_symbol")),
        trade_key=trade_key(trade_id) if isinstance(trade_id, str) else None,
        fields=fields,
        envelope=envelope,
    )


def trade_from_record(
    record: Mapping[str, Any], assets: Mapping[str, tuple[str, str]] | None = None
) -> Trade:
    """Normalise a Kafka raw record (or a Bronze row) of Bybit; raises
    :class:`~k2.errors.TradeInvalidError` as :func:`normalise_trade` does."""
    return normalise_trade(raw_from_record(record), assets)


# ---------------------------------------------------------------------------------------------
# The same normalisation as Spark SQL over a Bronze row of this exchange (Silver runs these).
# Each expression mirrors the Python above and is held equal to it by the Silver differential
# test; their keys are the parts of a unified trade that differ between exchanges.

_UPPER = "upper(exchange_symbol)"
_SPLIT = [
    (f"endswith({_UPPER}, {sql.literal(quote)}) AND length({_UPPER}) > {len(quote)}", quote)
    for quote in _BY_LENGTH
]

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
    "quantity": "size",
    "side": sql.case("side", SIDES),
    "order_type": "CAST(NULL AS STRING)",
    "exchange_us": "CASE WHEN trade_time >= 0 THEN try_multiply(trade_time, 1000L) END",
    "trade_id": "CASE WHEN trade_id <> '' THEN trade_id END",
    "needs_trade_id": "true",
    "message_id": f"concat('{EXCHANGE}:', exchange_symbol, ':', trade_id)",
    "complete": "true",
}
