"""Kraken's adapter for the ingest: feed options, the raw Avro record, and REST backfill.

Backfill reads the public ``Trades`` history, which pages by time (``since``, exclusive, in
nanoseconds) rather than by id: it starts just before the match time of the last trade delivered
ahead of the gap and keeps the rows whose ``trade_id`` falls in the missing range. A row
``[price, volume, time, side, ordertype, misc, trade_id]`` becomes a raw trade of protocol
``kraken-rest`` with v1's field names (the same letters and exact strings v1 sends) plus the v2
``trade_id``, so it carries the same ``message_id`` as the v2 trade it stands in for.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from k2.errors import BackfillError, ExchangeError, RateLimitedError
from k2.exchanges.base import Envelope, FieldValue, RawTrade
from k2.exchanges.contract import (
    DEFAULT_BACKFILL,
    WHOLE_EXCHANGE,
    AdapterBase,
    BackfillOptions,
    FeedSpec,
    Shard,
    simulator_ws_base,
)
from k2.exchanges.kraken import EXCHANGE, wire
from k2.exchanges.kraken.bookfeed import KrakenBookFeed
from k2.exchanges.kraken.client import KrakenFeedClient, KrakenFeedOptions
from k2.exchanges.kraken.config import KrakenSettings
from k2.exchanges.kraken.normalise import message_id as exchange_message_id
from k2.exchanges.kraken.normalise import parse_rfc3339_micros, parse_v1_time_micros
from k2.exchanges.kraken.symbols import parse_asset_pairs, resolve_pairs
from k2.transport.http import fetch_json

TRADES_PATH = "/0/public/Trades"
PUBLIC_INTERVAL_S = 1.0  # Kraken's public REST endpoints allow about one call per second
_PAGE_ROWS = 1000
_TIMEOUT_S = 15.0


class KrakenAdapter(AdapterBase):
    """Kraken's :class:`~k2.exchanges.contract.ExchangeAdapter`."""

    exchange = EXCHANGE
    schema_name = "kraken_raw"
    public_interval_s = PUBLIC_INTERVAL_S
    client_type = KrakenFeedClient
    book_client_type = KrakenBookFeed
    options_type = KrakenFeedOptions
    record_fields = (
        "exchange_symbol", "price", "side", "volume", "time", "order_type", "misc", "qty",
        "ord_type", "trade_id", "timestamp", "received_us", "connection_id", "position",
        "protocol", "occurrence", "snapshot", "message_id", "k2_version",
    )  # fmt: skip

    def __init__(
        self,
        settings: KrakenSettings,
        backfill: BackfillOptions = DEFAULT_BACKFILL,
        shard: Shard = WHOLE_EXCHANGE,
    ) -> None:
        super().__init__(settings, backfill, shard)
        self.protocol = settings.protocol
        self._rest_pairs: dict[str, str] | None = None  # native name → REST altname

    def exchange_options(self) -> dict[str, Any]:
        return {"protocol": self.protocol}

    def simulator_urls(self, base_url: str) -> tuple[str, str]:
        ws = simulator_ws_base(base_url)
        return (ws + "/" if self.protocol == "kraken-v1" else ws + "/v2"), base_url.rstrip("/")

    message_id = staticmethod(exchange_message_id)

    def record_values(self, raw: RawTrade, message_id: str, k2_version: str) -> tuple[Any, ...]:
        _, symbol, trade_key, fields, envelope, occurrence, snapshot = raw
        received_us, connection_id, position, protocol = envelope
        get = fields.get
        return (
            symbol, fields["price"], fields["side"], get("volume"), get("time"), get("order_type"),
            get("misc"), get("qty"), get("ord_type"), trade_key, get("timestamp"), received_us,
            connection_id, position, protocol, occurrence, snapshot, message_id, k2_version,
        )  # fmt: skip

    def record_trade_id(self, record: Mapping[str, Any]) -> int | None:
        value = record.get("trade_id")
        return value if isinstance(value, int) else None

    def exchange_us(self, raw: RawTrade) -> int | None:
        return _exchange_us(raw.fields)

    def record_exchange_us(self, record: Mapping[str, Any]) -> int | None:
        return _exchange_us(record)

    async def backfill(
        self, spec: FeedSpec, symbol: str, first_id: int, last_id: int, after_us: int | None
    ) -> list[RawTrade]:
        if after_us is None:
            raise BackfillError(
                f"kraken history pages by time and the time of the trade before id {first_id} "
                "is unknown"
            )
        rest_url = (spec.rest_url or wire.REST_URL).rstrip("/")
        pair = await self._rest_pair(rest_url, symbol)
        limit = self.backfill_options.max_trades
        since_ns = after_us * 1000 - 1  # exclusive: also rows at the same microsecond
        found: list[RawTrade] = []
        position = 0
        while len(found) < limit:
            query = urlencode({"pair": pair, "since": str(since_ns), "count": _PAGE_ROWS})
            payload = await self._get(f"{rest_url}{TRADES_PATH}?{query}")
            rows, last_ns = _trade_rows(payload)
            if not rows:
                break
            received_us = time.time_ns() // 1000
            for row in rows:
                trade = _rest_trade(symbol, row, received_us, position)
                position += 1
                key = trade.trade_key
                if key is not None and first_id <= key <= last_id and len(found) < limit:
                    found.append(trade)
            newest = rows[-1][6] if len(rows[-1]) > 6 else None
            if isinstance(newest, int) and newest >= last_id:
                break
            if last_ns is None or last_ns <= since_ns:
                break
            since_ns = last_ns
        return found

    async def newest_trade_id(self, spec: FeedSpec, symbol: str) -> int | None:
        """The newest row of ``Trades`` (v2 only: v1 trades carry no id): its id, the row's 7th
        element."""
        if self.protocol != "kraken-v2":
            return None
        rest_url = (spec.rest_url or wire.REST_URL).rstrip("/")
        pair = await self._rest_pair(rest_url, symbol)
        payload = await self._get(
            f"{rest_url}{TRADES_PATH}?{urlencode({'pair': pair, 'count': 1})}"
        )
        rows, _ = _trade_rows(payload)
        newest = rows[-1][6] if rows and len(rows[-1]) > 6 else None
        return newest if isinstance(newest, int) else None

    async def _rest_pair(self, rest_url: str, symbol: str) -> str:
        """The REST name of a pair, from one read of ``AssetPairs`` (again for a new listing)."""
        if self._rest_pairs is None or symbol not in self._rest_pairs:
            payload = await self._get(rest_url + wire.ASSET_PAIRS_PATH)
            try:
                listed = parse_asset_pairs(payload)
            except ExchangeError as exc:
                raise BackfillError(str(exc)) from exc
            self._rest_pairs = {
                name: pair.altname
                for pair in listed.values()
                for name in (pair.wsname, pair.v2_name)
            }
        pair = self._rest_pairs.get(symbol)
        if pair is None:
            try:
                resolve_pairs([symbol], {})
            except ExchangeError as exc:
                raise BackfillError(str(exc)) from exc
            raise BackfillError(f"kraken does not list {symbol!r}")
        return pair

    async def _get(self, url: str) -> object:
        async def request() -> object:
            payload = await fetch_json(url, _TIMEOUT_S)
            errors = payload.get("error") if isinstance(payload, dict) else None
            if errors and any("Too many requests" in str(e) for e in errors):
                raise RateLimitedError(f"{url}: {errors[0]}", PUBLIC_INTERVAL_S * 5)
            if errors:
                raise BackfillError(f"kraken {url} answered {errors[0]}")
            return payload

        try:
            return await self._pacer.call(request)
        except ExchangeError as exc:
            if isinstance(exc, BackfillError):
                raise
            raise BackfillError(str(exc)) from exc


def _exchange_us(fields: Mapping[str, Any]) -> int | None:
    """Match time of v2 (``timestamp``), v1 and REST (``time``) fields, or None."""
    try:
        timestamp = fields.get("timestamp")
        if isinstance(timestamp, str):
            return parse_rfc3339_micros(timestamp)
        seconds = fields.get("time")
        if isinstance(seconds, str):
            return parse_v1_time_micros(seconds)
    except ExchangeError:
        return None
    return None


def _trade_rows(payload: object) -> tuple[list[list[Any]], int | None]:
    result = payload.get("result") if isinstance(payload, dict) else None
    if not isinstance(result, dict):
        raise BackfillError("kraken Trades response has no result object")
    rows: list[list[Any]] = []
    for key, value in result.items():
        if key != "last" and isinstance(value, list):
            rows = [row for row in value if isinstance(row, list) and len(row) >= 7]
    last = result.get("last")
    try:
        last_ns = int(str(last)) if last is not None else None
    except ValueError:
        last_ns = None
    return rows, last_ns


def _text(value: object) -> str:
    """A REST value as the exact text the exchange sent (numbers arrive as Decimal)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _rest_trade(symbol: str, row: list[Any], received_us: int, position: int) -> RawTrade:
    price, volume, seconds, side, order_type, misc, trade_id = row[:7]
    fields: dict[str, FieldValue] = {
        "price": _text(price),
        "volume": _text(volume),
        "time": _text(seconds),
        "side": _text(side),
        "order_type": _text(order_type),
        "misc": _text(misc),
        "trade_id": trade_id if isinstance(trade_id, int) else None,
    }
    key = trade_id if isinstance(trade_id, int) and not isinstance(trade_id, bool) else None
    envelope = Envelope(received_us, "rest", position, "kraken-rest")
    return RawTrade(EXCHANGE, symbol, key, fields, envelope)
