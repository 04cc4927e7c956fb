"""Coinbase raw trades (``market_trades`` and the Exchange API's history) → the unified
:class:`~k2.domain.Trade`.

- Symbol: a product id is ``BASE-QUOTE`` (``BTC-USD``); base and quote are its two sides.
- Side: Silver's side is the taker's, and every Coinbase source sends the maker's. The Exchange
  API, whose engine and trade ids ``market_trades`` shares, says so of its trades: "The side of a
  trade indicates the maker order side ... A buy side indicates a down-tick because the maker was
  a buy order" (docs.cdp.coinbase.com/api-reference/exchange-api/rest-api/products/
  get-product-trades.md). Coinbase's pages on ``market_trades`` give ``side`` as ``BUY``/``SELL``
  without saying whose; nautilus_trader's Coinbase adapter says it of them: "Coinbase reports
  the maker side on public market trades, so the aggressor is the opposite side"
  (``nautilus_coinbase::http::parse::coinbase_side_to_aggressor``), and its recorded
  Advanced Trade ticker has trades at the best ask marked ``SELL``: a buyer who lifted a
  resting sell. So a side is turned over whatever the source: ``BUY``/``buy`` → ``sell``.
- Price and quantity: the decimal text as sent → :class:`~decimal.Decimal`; ``quote_quantity``
  is their exact product.
- Time: RFC 3339 with ms to ns digits → µs, the digits beyond the microsecond cut off.
- ``message_id``: ``coinbase:<product>:<trade_id>`` with the id as an integer, so a trade sent
  as ``"000042"`` on the socket and ``42`` by REST has one id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from k2.domain import Side, Trade, canonical_asset, datetime_from_micros
from k2.errors import TradeInvalidError
from k2.exchanges import sql
from k2.exchanges.base import LONG_MAX, FieldValue, RawTrade, record_envelope
from k2.exchanges.coinbase import EXCHANGE
from k2.exchanges.coinbase.wire import MESSAGE_FIELDS, TRADE_FIELDS
from k2.exchanges.values import (
    decimal_of,
    exact_product,
    rfc3339_micros,
    rfc3339_micros_sql,
)

REST_PROTOCOL = "coinbase-rest"
# The taker's side of the maker's side Coinbase sends, by protocol: upper case on the socket,
# lower case in the Exchange API's history (another case is refused, never guessed at).
TAKER_OF_MAKER: dict[str, Side] = {"BUY": "sell", "SELL": "buy"}
TAKER_OF_HISTORY_MAKER: dict[str, Side] = {"buy": "sell", "sell": "buy"}
_TRADE_ID = re.compile(r"[0-9]+", re.ASCII)


def message_id(raw: RawTrade) -> str:
    """``coinbase:<product>:<trade id>``, the same for the socket's and the history's copy."""
    return f"{EXCHANGE}:{raw.native_symbol}:{raw.trade_key}"


def split_product(product_id: str) -> tuple[str, str]:
    """``BTC-USD`` → ``("BTC", "USD")``, canonical; refuses a name without both sides."""
    base, sep, quote = product_id.partition("-")
    if not sep or not base or not quote:
        raise TradeInvalidError(f"coinbase product {product_id!r} is not BASE-QUOTE", "symbol")
    return canonical_asset(base), canonical_asset(quote)


def taker_side(fields: Mapping[str, FieldValue], protocol: str) -> Side:
    """The taker's side of a trade: the other of the maker's side it carries."""
    sides = TAKER_OF_HISTORY_MAKER if protocol == REST_PROTOCOL else TAKER_OF_MAKER
    side = sides.get(str(fields.get("side")))
    if side is None:
        raise TradeInvalidError(f"coinbase side {fields.get('side')!r} is not known", "side")
    return side


def exchange_micros(fields: Mapping[str, Any]) -> int:
    """The match time (µs since the epoch) of a trade's ``time``."""
    time = fields.get("time")
    if not isinstance(time, str):
        raise TradeInvalidError("coinbase trade time is missing or not text", "time")
    return rfc3339_micros(time, "coinbase time")


def normalise_trade(raw: RawTrade) -> Trade:
    """Normalise a Coinbase raw trade; raises :class:`~k2.errors.TradeInvalidError` (with a
    ``reason``) when a value cannot be read, so the caller can quarantine it."""
    fields = raw.fields
    base, quote = split_product(raw.native_symbol)
    if raw.trade_key is None:
        raise TradeInvalidError("coinbase trade without a trade_id", "trade_id")
    price = decimal_of(fields.get("price"), "coinbase price", "price")
    quantity = decimal_of(fields.get("size"), "coinbase size", "quantity")
    side = taker_side(fields, raw.envelope.protocol)
    try:
        exchange_ts = datetime_from_micros(exchange_micros(fields))
    except OverflowError:
        raise TradeInvalidError("coinbase trade time is out of range", "time") from None
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
        quote_quantity=exact_product(price, quantity),
        side=side,
        order_type=None,
        exchange_ts=exchange_ts,
        received_ts=datetime_from_micros(raw.envelope.received_us),
    )


def record_trade_key(text: object) -> int | None:
    """The integer of a record's ``trade_id`` text, or None where it is not one."""
    if not isinstance(text, str) or not _TRADE_ID.fullmatch(text):
        return None
    key = int(text)
    return key if key <= LONG_MAX else None


def raw_from_record(record: Mapping[str, Any]) -> RawTrade:
    """The raw trade a Kafka raw record (or a Bronze row) was made from: the trade object's
    fields as sent, what the record keeps of the message, and the envelope.

    The inverse of the ingest's record for this exchange: ``raw_from_record(record)`` normalises
    to the same :class:`~k2.domain.Trade` as the raw trade the record was written from.
    """
    fields: dict[str, FieldValue] = {name: record.get(name) for name in TRADE_FIELDS}
    fields["product_id"] = record.get("exchange_symbol")
    for name in MESSAGE_FIELDS:
        if record.get(name) is not None:
            fields[name] = record[name]
    envelope = record_envelope(record)
    return RawTrade(
        exchange=EXCHANGE,
        native_symbol=str(record.get("exchange_symbol")),
        trade_key=record_trade_key(record.get("trade_id")),
        fields=fields,
        envelope=envelope,
        snapshot=bool(record.get("snapshot")),
    )


def trade_from_record(record: Mapping[str, Any]) -> Trade:
    """Normalise a Kafka raw record (or a Bronze row) of Coinbase; raises
    :class:`~k2.errors.TradeInvalidError` as :func:`normalise_trade` does."""
    return normalise_trade(raw_from_record(record))


# ---------------------------------------------------------------------------------------------
# The same normalisation as Spark SQL over a Bronze row of this exchange (Silver runs these).
# Each expression mirrors the Python above and is held equal to it by the Silver differential
# test; their keys are the parts of a unified trade that differ between exchanges.

_DASH = "instr(exchange_symbol, '-')"
_IS_REST = f"protocol = {sql.literal(REST_PROTOCOL)}"
_SPLITS = f"({_DASH} > 1 AND {_DASH} < length(exchange_symbol))"
# The id as an integer's text; NULL for text that is not digits or does not fit 64 bits.
_TRADE_ID_SQL = (
    f"CASE WHEN {sql.full_match('trade_id', '[0-9]+')} "
    "THEN CAST(try_cast(trade_id AS DECIMAL(38, 0)) AS STRING) END"
)
_LONG_ID = f"CASE WHEN try_cast(trade_id AS DECIMAL(38, 0)) <= {LONG_MAX} THEN {_TRADE_ID_SQL} END"

SILVER_SQL: Mapping[str, str] = {
    "base": f"CASE WHEN {_SPLITS} THEN substring_index(exchange_symbol, '-', 1) END",
    "quote": f"CASE WHEN {_SPLITS} THEN substr(exchange_symbol, {_DASH} + 1) END",
    "price": "price",
    "quantity": "size",
    "side": f"CASE WHEN {_IS_REST} THEN {sql.case('side', TAKER_OF_HISTORY_MAKER)} "
    f"ELSE {sql.case('side', TAKER_OF_MAKER)} END",
    "order_type": "CAST(NULL AS STRING)",
    "exchange_us": rfc3339_micros_sql("time"),
    "trade_id": _LONG_ID,
    "needs_trade_id": "true",
    "message_id": f"concat('{EXCHANGE}:', exchange_symbol, ':', {_LONG_ID})",
    "complete": "true",
}
