"""Kraken raw trades (v1 and v2) → the unified :class:`~k2.domain.Trade`.

Prices and sizes go from the exact decimal text to :class:`~decimal.Decimal` and
``quote_quantity`` is their exact product; times become integer microseconds without a float:
v1 ``"1534614057.321597"`` is split at the point, v2 RFC 3339 is read by the standard parser.

``message_id`` is deterministic, so the same trade received twice (a reconnect snapshot, a
backfill) maps to the same id and Gold keeps it once:

- v2: ``kraken:<symbol>:<trade_id>`` (``trade_id`` is a per-book sequence number);
- v1 (no trade id): ``kraken:<pair>:<hash>-<occurrence>``, see :func:`v1_message_id` and
  :class:`V1OccurrenceCounter` for how identical trades are told apart.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from k2.domain import Side, Trade, canonical_asset, datetime_from_micros
from k2.errors import TradeInvalidError
from k2.exchanges import sql
from k2.exchanges.base import (
    FieldValue,
    RawTrade,
    SequenceTracker,
    SequenceVerdict,
    record_envelope,
)
from k2.exchanges.kraken import EXCHANGE
from k2.exchanges.kraken.wire import V1_TRADE_FIELDS, V2_TRADE_FIELDS
from k2.exchanges.values import exact_product, rfc3339_micros, rfc3339_micros_sql

__all__ = [
    "SequenceTracker",
    "SequenceVerdict",
    "V1OccurrenceCounter",
    "message_id",
    "normalise_trade",
    "parse_rfc3339_micros",
    "parse_v1_time_micros",
    "raw_from_record",
    "trade_from_record",
    "v1_message_id",
]

_DECIMAL = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_V1_TIME = re.compile(r"(\d+)(?:\.(\d+))?", re.ASCII)
_V1_SIDES: dict[str, Side] = {"b": "buy", "s": "sell", "buy": "buy", "sell": "sell"}
_V2_SIDES: dict[str, Side] = {"buy": "buy", "sell": "sell"}
_V1_ORDER_TYPES = {"l": "limit", "m": "market", "limit": "limit", "market": "market"}


def _text(fields: Mapping[str, FieldValue], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise TradeInvalidError(f"kraken trade field {name} is missing or not text", name)
    return value


def _decimal(text: str, name: str) -> Decimal:
    if not _DECIMAL.fullmatch(text):
        raise TradeInvalidError(f"kraken trade {name} {text!r} is not a decimal", name)
    return Decimal(text)


def parse_v1_time_micros(text: str) -> int:
    """``"1534614057.321597"`` → 1534614057321597 µs, exactly (digits beyond µs are cut off)."""
    match = _V1_TIME.fullmatch(text)
    if match is None:
        raise TradeInvalidError(f"kraken v1 time {text!r} is not seconds.micros", "time")
    seconds, fraction = match.group(1), match.group(2) or ""
    return int(seconds) * 1_000_000 + int(fraction[:6].ljust(6, "0"))


def parse_rfc3339_micros(text: str) -> int:
    """``"2023-09-25T07:48:36.925533Z"`` → µs since the epoch; a time zone is required."""
    return rfc3339_micros(text, "kraken v2 timestamp")


def _v1_tuple(pair: str, fields: Mapping[str, FieldValue]) -> tuple[str, ...]:
    return (pair, *(_text(fields, name) for name in V1_TRADE_FIELDS))


def v1_message_id(pair: str, fields: Mapping[str, FieldValue], occurrence: int) -> str:
    """``kraken:<pair>:<sha256 of the full trade tuple, 32 hex>-<occurrence>``.

    The tuple is (pair, price, volume, time, side, order_type, misc), every value exactly as
    sent, serialised as a JSON array (so no two different tuples share an encoding).
    """
    encoded = json.dumps(_v1_tuple(pair, fields), separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:32]
    return f"{EXCHANGE}:{pair}:{digest}-{occurrence}"


class V1OccurrenceCounter:
    """Numbers identical v1 trade tuples of one pair so each gets its own ``message_id``.

    The rule: a trade's occurrence is the number of identical tuples (same pair, price, volume,
    time, side, order type, misc) seen *before it with the same time* since the counter was
    created. The count is kept per pair for the current ``time`` only and starts again at 0 when
    the time changes.

    Why it is stable across a reconnect: identical tuples share their microsecond ``time``, and
    Kraken sends a pair's trades in time order, so all copies of a tuple arrive next to each
    other in time. The count therefore never depends on anything older than the current time
    group. The client creates a fresh counter for every (re)subscription; the 50-trade snapshot
    that follows re-sends trades in the same order, so each re-sent trade gets the same
    occurrence, hence the same id, as the first time, and can be dropped. Two genuinely identical
    fills (one taker order hitting two equal resting orders) get 0 and 1, so both are kept.

    The one case it cannot see: if the snapshot's 50-trade window starts in the middle of a group
    of identical trades, the copies inside the window are numbered from 0 again and collide with
    the ids of the copies that were already delivered (v1 carries no ids to tell them apart; use
    v2 where this matters).
    """

    def __init__(self) -> None:
        self._groups: dict[str, tuple[str, Counter[tuple[str, ...]]]] = {}

    def assign(self, trade: RawTrade) -> RawTrade:
        """The trade with its ``occurrence`` set (trades must be given in arrival order)."""
        key = _v1_tuple(trade.native_symbol, trade.fields)
        time = key[3]
        group = self._groups.get(trade.native_symbol)
        if group is None or group[0] != time:
            group = (time, Counter())
            self._groups[trade.native_symbol] = group
        counts = group[1]
        occurrence = counts[key]
        counts[key] = occurrence + 1
        return trade if occurrence == trade.occurrence else trade._replace(occurrence=occurrence)


def message_id(raw: RawTrade) -> str:
    """The trade's deterministic id: by ``trade_id`` where the exchange sends one (v2, REST),
    else by the v1 rule of :func:`v1_message_id`."""
    if raw.trade_key is None:
        return v1_message_id(raw.native_symbol, raw.fields, raw.occurrence)
    return f"{EXCHANGE}:{raw.native_symbol}:{raw.trade_key}"


def _pair_assets(symbol: str) -> tuple[str, str]:
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise TradeInvalidError(f"kraken symbol {symbol!r} is not BASE/QUOTE", "symbol")
    return canonical_asset(base), canonical_asset(quote)


def _trade(
    raw: RawTrade,
    *,
    price: Decimal,
    quantity: Decimal,
    side: Side,
    message_id: str,
    trade_id: str | None,
    order_type: str | None,
    exchange_us: int,
) -> Trade:
    base, quote = _pair_assets(raw.native_symbol)
    try:
        exchange_ts = datetime_from_micros(exchange_us)
    except OverflowError:
        raise TradeInvalidError(
            f"kraken trade time {exchange_us} µs is out of range", "time"
        ) from None
    return Trade(
        message_id=message_id,
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
        order_type=order_type,
        exchange_ts=exchange_ts,
        received_ts=datetime_from_micros(raw.envelope.received_us),
    )


def _normalise_v1(raw: RawTrade) -> Trade:
    fields = raw.fields
    side = _V1_SIDES.get(_text(fields, "side"))
    if side is None:
        raise TradeInvalidError(f"kraken v1 side {fields['side']!r} is not b or s", "side")
    return _trade(
        raw,
        price=_decimal(_text(fields, "price"), "price"),
        quantity=_decimal(_text(fields, "volume"), "quantity"),
        side=side,
        message_id=message_id(raw),
        trade_id=None,
        order_type=_V1_ORDER_TYPES.get(_text(fields, "order_type")),
        exchange_us=parse_v1_time_micros(_text(fields, "time")),
    )


def _normalise_v2(raw: RawTrade) -> Trade:
    fields = raw.fields
    side = _V2_SIDES.get(_text(fields, "side"))
    if side is None:
        raise TradeInvalidError(f"kraken v2 side {fields['side']!r} is not buy or sell", "side")
    if raw.trade_key is None:
        raise TradeInvalidError("kraken v2 trade without trade_id", "trade_id")
    order_type = fields.get("ord_type")
    return _trade(
        raw,
        price=_decimal(_text(fields, "price"), "price"),
        quantity=_decimal(_text(fields, "qty"), "quantity"),
        side=side,
        message_id=message_id(raw),
        trade_id=str(raw.trade_key),
        order_type=order_type if isinstance(order_type, str) else None,
        exchange_us=parse_rfc3339_micros(_text(fields, "timestamp")),
    )


def _normalise_rest(raw: RawTrade) -> Trade:
    """A REST history row: v1's fields (letters for side and order type, seconds as text) plus
    the v2 ``trade_id``, so it gets the same ``message_id`` as the v2 trade."""
    if raw.trade_key is None:
        raise TradeInvalidError("kraken REST trade without trade_id", "trade_id")
    trade = _normalise_v1(raw)
    return replace(trade, message_id=message_id(raw), trade_id=str(raw.trade_key))


def normalise_trade(raw: RawTrade) -> Trade:
    """Normalise a Kraken raw trade; raises :class:`~k2.errors.TradeInvalidError` (with a
    ``reason``) when a value cannot be read, so the caller can quarantine it."""
    protocol = raw.envelope.protocol
    if protocol == "kraken-v1":
        return _normalise_v1(raw)
    if protocol == "kraken-rest":
        return _normalise_rest(raw)
    return _normalise_v2(raw)


_V1_RECORD_FIELDS = (*V1_TRADE_FIELDS, "trade_id")


def raw_from_record(record: Mapping[str, Any]) -> RawTrade:
    """The raw trade a Kafka raw record (or a Bronze row) was made from: the fields of its
    protocol under the exchange's names, its envelope, occurrence and snapshot flag.

    The inverse of the ingest's record for this exchange: ``raw_from_record(record)`` normalises to
    the same :class:`~k2.domain.Trade` as the raw trade the record was written from.
    """
    protocol = record.get("protocol")
    names = V2_TRADE_FIELDS if protocol == "kraken-v2" else _V1_RECORD_FIELDS
    fields: dict[str, FieldValue] = {name: record.get(name) for name in names}
    if protocol == "kraken-v2":
        fields["symbol"] = record.get("exchange_symbol")
    trade_id = record.get("trade_id")
    envelope = record_envelope(record)
    return RawTrade(
        exchange=EXCHANGE,
        native_symbol=str(record.get("exchange_symbol")),
        trade_key=trade_id if isinstance(trade_id, int) else None,
        fields=fields,
        envelope=envelope,
        occurrence=int(record.get("occurrence") or 0),
        snapshot=bool(record.get("snapshot")),
    )


def trade_from_record(record: Mapping[str, Any]) -> Trade:
    """Normalise a Kafka raw record (or a Bronze row) of Kraken; raises
    :class:`~k2.errors.TradeInvalidError` as :func:`normalise_trade` does."""
    return normalise_trade(raw_from_record(record))


# ---------------------------------------------------------------------------------------------
# The same normalisation as Spark SQL over a Bronze row of this exchange (Silver runs these).
# Each expression mirrors the Python above and is held equal to it by the Silver differential
# test; their keys are the parts of a unified trade that differ between exchanges.

_IS_V1 = "protocol = 'kraken-v1'"
_IS_V2 = "protocol = 'kraken-v2'"
_SLASH = "instr(exchange_symbol, '/')"
_SPLITS = f"({_SLASH} > 1 AND {_SLASH} < length(exchange_symbol))"
# Digits after the point (only called on text already checked whole), as µs: cut, then padded.
_MICROS_OF = "CAST(rpad(substr({0}, 1, 6), 6, '0') AS BIGINT)"
_V1_FRACTION = "CASE WHEN instr(time, '.') > 0 THEN substring_index(time, '.', -1) ELSE '' END"
_V1_SECONDS = (
    f"CASE WHEN {sql.full_match('time', '[0-9]+([.][0-9]+)?')} THEN try_add("
    "try_multiply(try_cast(substring_index(time, '.', 1) AS BIGINT), 1000000), "
    f"{_MICROS_OF.format(_V1_FRACTION)}) END"
)
_V2_TIMESTAMP = rfc3339_micros_sql("timestamp")

SILVER_SQL: Mapping[str, str] = {
    "base": f"CASE WHEN {_SPLITS} THEN substring_index(exchange_symbol, '/', 1) END",
    "quote": f"CASE WHEN {_SPLITS} THEN substr(exchange_symbol, {_SLASH} + 1) END",
    "price": "price",
    "quantity": f"CASE WHEN {_IS_V2} THEN qty ELSE volume END",
    "side": f"CASE WHEN {_IS_V2} THEN {sql.case('side', _V2_SIDES)} "
    f"ELSE {sql.case('side', _V1_SIDES)} END",
    "order_type": f"CASE WHEN {_IS_V2} THEN ord_type "
    f"ELSE {sql.case('order_type', _V1_ORDER_TYPES)} END",
    "exchange_us": f"CASE WHEN {_IS_V2} THEN {_V2_TIMESTAMP} ELSE {_V1_SECONDS} END",
    "trade_id": f"CASE WHEN {_IS_V1} THEN NULL ELSE CAST(trade_id AS STRING) END",
    "needs_trade_id": f"NOT ({_IS_V1})",
    "message_id": f"CASE WHEN {_IS_V1} THEN message_id "
    f"ELSE concat('{EXCHANGE}:', exchange_symbol, ':', CAST(trade_id AS STRING)) END",
    # v1's id hashes every field of the trade tuple; REST rows need their order type.
    "complete": f"CASE WHEN {_IS_V1} THEN order_type IS NOT NULL AND misc IS NOT NULL "
    f"AND message_id IS NOT NULL WHEN {_IS_V2} THEN true ELSE order_type IS NOT NULL END",
}
