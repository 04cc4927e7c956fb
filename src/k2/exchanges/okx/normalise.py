"""OKX raw trades (``trades-all`` pushes and REST history rows) → the unified trade.

- Symbol: a spot ``instId`` is ``BASE-QUOTE`` (``BTC-USDT``); anything else (``BTC-USDT-SWAP``)
  has no spot base and quote and is refused.
- Side: ``side`` is the taker's ("Trade side of taker", see :mod:`k2.exchanges.okx.wire`).
- Price and quantity: ``px``/``sz`` decimal text → :class:`~decimal.Decimal`; ``quote_quantity``
  is their exact product.
- Time: ``ts`` is a decimal string of milliseconds since the epoch → µs.
- ``message_id``: ``okx:<instId>:<tradeId>`` (trade ids are per instrument).
- A ``trades`` row standing for several trades (``count`` other than 1) is refused: the unified
  trade is one trade.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from k2.domain import Side, Trade, canonical_asset, datetime_from_micros, exact_product
from k2.errors import TradeInvalidError
from k2.exchanges import sql
from k2.exchanges.base import FieldValue, RawTrade, record_envelope
from k2.exchanges.okx import EXCHANGE
from k2.exchanges.okx.parse import trade_key

__all__ = [
    "RECORD_FIELDS",
    "SILVER_SQL",
    "message_id",
    "normalise_trade",
    "raw_from_record",
    "split_symbol",
    "trade_from_record",
]

_DECIMAL = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_MILLIS = re.compile(r"\d+", re.ASCII)
_TRADE_ID = re.compile(r"0|[1-9]\d*", re.ASCII)
_SPOT = re.compile(r"[^-]+-[^-]+")
_SIDES: dict[str, Side] = {"buy": "buy", "sell": "sell"}


def split_symbol(inst_id: str) -> tuple[str, str] | None:
    """``BTC-USDT`` → ``("BTC", "USDT")``; None for anything but ``BASE-QUOTE``."""
    if not _SPOT.fullmatch(inst_id):
        return None
    base, _, quote = inst_id.partition("-")
    return base, quote


def message_id(raw: RawTrade) -> str:
    """``okx:<instId>:<tradeId>``, the same for the live row and the REST row of a trade."""
    return f"{EXCHANGE}:{raw.native_symbol}:{raw.fields.get('tradeId')}"


def _text(fields: Mapping[str, FieldValue], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise TradeInvalidError(f"okx trade field {name} is missing or not text", name)
    return value


def _decimal(fields: Mapping[str, FieldValue], name: str, reason: str) -> Decimal:
    text = _text(fields, name)
    if not _DECIMAL.fullmatch(text):
        raise TradeInvalidError(f"okx trade {name} {text!r} is not a decimal", reason)
    return Decimal(text)


def _exchange_us(fields: Mapping[str, FieldValue]) -> int:
    text = _text(fields, "ts")
    if not _MILLIS.fullmatch(text):
        raise TradeInvalidError(f"okx trade ts {text!r} is not milliseconds", "time")
    return int(text) * 1000


def normalise_trade(raw: RawTrade) -> Trade:
    """Normalise an OKX raw trade; raises :class:`~k2.errors.TradeInvalidError` (with a
    ``reason``) when a value cannot be read, so the caller can quarantine it."""
    fields = raw.fields
    pair = split_symbol(raw.native_symbol)
    if pair is None:
        raise TradeInvalidError(f"okx instId {raw.native_symbol!r} is not BASE-QUOTE", "symbol")
    base, quote = canonical_asset(pair[0]), canonical_asset(pair[1])
    if fields.get("count") not in (None, "1"):
        raise TradeInvalidError(f"okx row aggregates {fields.get('count')!r} trades", "count")
    price = _decimal(fields, "px", "price")
    quantity = _decimal(fields, "sz", "quantity")
    side = _SIDES.get(_text(fields, "side"))
    if side is None:
        raise TradeInvalidError(f"okx side {fields.get('side')!r} is not buy or sell", "side")
    trade_id = fields.get("tradeId")
    if not isinstance(trade_id, str) or not _TRADE_ID.fullmatch(trade_id):
        raise TradeInvalidError(f"okx tradeId {trade_id!r} is not an id", "trade_id")
    try:
        exchange_ts = datetime_from_micros(_exchange_us(fields))
    except OverflowError:
        raise TradeInvalidError(f"okx ts {fields.get('ts')!r} is out of range", "time") from None
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
        quote_quantity=exact_product(price, quantity),
        side=side,
        order_type=None,
        exchange_ts=exchange_ts,
        received_ts=datetime_from_micros(raw.envelope.received_us),
    )


def exchange_us(fields: Mapping[str, Any]) -> int | None:
    """The match time of a row's or record's ``ts`` in µs, or None when it is not one."""
    text = fields.get("ts")
    if not isinstance(text, str) or not _MILLIS.fullmatch(text):
        return None
    return int(text) * 1000


# Record field names of the row's keys (the raw Avro schema's names).
RECORD_FIELDS = {
    "instId": "exchange_symbol",
    "tradeId": "trade_id",
    "px": "price",
    "sz": "quantity",
    "side": "side",
    "ts": "ts",
    "source": "source",
    "count": "count",
    "seqId": "seq_id",
    "channel": "channel",
}


def raw_from_record(record: Mapping[str, Any]) -> RawTrade:
    """The raw trade a Kafka raw record (or a Bronze row) was made from: the row under OKX's
    keys (fields the record has as null are left out, as OKX leaves them out) and the envelope.
    ``raw_from_record(record)`` normalises to the same trade as the raw trade it came from."""
    fields: dict[str, FieldValue] = {
        key: record[name] for key, name in RECORD_FIELDS.items() if record.get(name) is not None
    }
    trade_id = fields.get("tradeId")
    envelope = record_envelope(record)
    return RawTrade(
        exchange=EXCHANGE,
        native_symbol=str(record.get("exchange_symbol")),
        trade_key=trade_key(trade_id) if isinstance(trade_id, str) else None,
        fields=fields,
        envelope=envelope,
        snapshot=bool(record.get("snapshot")),
    )


def trade_from_record(record: Mapping[str, Any]) -> Trade:
    """Normalise a Kafka raw record (or a Bronze row) of OKX; raises
    :class:`~k2.errors.TradeInvalidError` as :func:`normalise_trade` does."""
    return normalise_trade(raw_from_record(record))


# ---------------------------------------------------------------------------------------------
# The same normalisation as Spark SQL over a Bronze row of this exchange (Silver runs these).
# Each expression mirrors the Python above and is held equal to it by the Silver differential
# test; their keys are the parts of a unified trade that differ between exchanges.

_SPLITS = sql.full_match("exchange_symbol", "[^-]+-[^-]+")
_ID = f"CASE WHEN {sql.full_match('trade_id', '0|[1-9][0-9]*')} THEN trade_id END"

SILVER_SQL: Mapping[str, str] = {
    "base": f"CASE WHEN {_SPLITS} THEN substring_index(exchange_symbol, '-', 1) END",
    "quote": f"CASE WHEN {_SPLITS} THEN substring_index(exchange_symbol, '-', -1) END",
    "price": "price",
    "quantity": "quantity",
    "side": sql.case("side", _SIDES),
    "order_type": "CAST(NULL AS STRING)",
    "exchange_us": f"CASE WHEN {sql.full_match('ts', '[0-9]+')} "
    "THEN try_multiply(try_cast(ts AS BIGINT), 1000L) END",
    "trade_id": _ID,
    "needs_trade_id": "true",
    "message_id": f"concat('{EXCHANGE}:', exchange_symbol, ':', {_ID})",
    "complete": "coalesce(count, '1') = '1'",
}
