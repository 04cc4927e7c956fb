"""Binance's adapter for the ingest: feed options, the raw Avro record, and REST backfill.

Backfill pages the public history by id: ``historicalTrades?fromId=`` for the ``@trade``
stream and ``aggTrades?fromId=`` for ``@aggTrade``, 1,000 rows a request, in the connection's
time unit (``X-MBX-TIME-UNIT``). Rows become raw trades of protocol ``binance-rest`` with the
stream payload's one-letter keys (``t``/``a``, ``p``, ``q``, ``T``, ``m``, ``M``), so each keeps
the ``message_id`` of the stream trade it stands in for. REST rows carry no event time
(``event_time`` is null) and ``quoteQty`` is not kept (it is ``p × q``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from k2.errors import BackfillError, ExchangeError
from k2.exchanges.base import Envelope, FieldValue, RawTrade
from k2.exchanges.binance import EXCHANGE, wire
from k2.exchanges.binance.bookfeed import BinanceBookFeed
from k2.exchanges.binance.client import BinanceFeedClient, BinanceFeedOptions
from k2.exchanges.binance.config import BinanceSettings
from k2.exchanges.binance.normalise import message_id as exchange_message_id
from k2.exchanges.binance.normalise import trade_time_micros
from k2.exchanges.contract import (
    DEFAULT_BACKFILL,
    WHOLE_EXCHANGE,
    AdapterBase,
    BackfillOptions,
    FeedSpec,
    Shard,
    simulator_ws_base,
)
from k2.transport.http import fetch_json

HISTORICAL_TRADES_PATH = "/api/v3/historicalTrades"
RECENT_TRADES_PATH = "/api/v3/trades"
AGG_TRADES_PATH = "/api/v3/aggTrades"
# historicalTrades costs 25 of the 6,000 request weight a minute: 4 a second stays within it.
PUBLIC_INTERVAL_S = 0.25
_PAGE_ROWS = 1000
_TIMEOUT_S = 15.0
# REST row key → stream payload key
_TRADE_KEYS = {"id": "t", "price": "p", "qty": "q", "time": "T", "isBuyerMaker": "m",
               "isBestMatch": "M"}  # fmt: skip
_AGG_KEYS = {key: key for key in ("a", "p", "q", "f", "l", "T", "m", "M")}


class BinanceAdapter(AdapterBase):
    """Binance's :class:`~k2.exchanges.contract.ExchangeAdapter`."""

    exchange = EXCHANGE
    schema_name = "binance_raw"
    public_interval_s = PUBLIC_INTERVAL_S
    client_type = BinanceFeedClient
    book_client_type = BinanceBookFeed
    options_type = BinanceFeedOptions
    record_fields = (
        "exchange_symbol", "event_type", "event_time", "trade_id", "agg_trade_id",
        "first_trade_id", "last_trade_id", "price", "quantity", "trade_time", "buyer_is_maker",
        "ignore_m", "time_unit", "stream", "received_us", "connection_id", "position",
        "protocol", "snapshot", "message_id", "k2_version",
    )  # fmt: skip

    def __init__(
        self,
        settings: BinanceSettings,
        backfill: BackfillOptions = DEFAULT_BACKFILL,
        shard: Shard = WHOLE_EXCHANGE,
    ) -> None:
        super().__init__(settings, backfill, shard)
        self.stream: wire.StreamKind = settings.stream
        self.time_unit: wire.TimeUnit = settings.time_unit
        self._event = "trade" if self.stream == "trade" else "aggTrade"
        self._streams: dict[tuple[str, FieldValue], str] = {}

    def exchange_options(self) -> dict[str, Any]:
        return {"stream": self.stream, "time_unit": self.time_unit}

    def simulator_urls(self, base_url: str) -> tuple[str, str]:
        ws = simulator_ws_base(base_url)
        return ws, base_url.rstrip("/")

    message_id = staticmethod(exchange_message_id)

    def record_values(self, raw: RawTrade, message_id: str, k2_version: str) -> tuple[Any, ...]:
        _, symbol, _, f, envelope, _, snapshot = raw
        received_us, connection_id, position, protocol = envelope
        get = f.get
        kind = get("e")
        stream = None if protocol == "binance-rest" else self._stream(symbol, kind)
        return (
            symbol, kind, get("E"), get("t"), get("a"), get("f"), get("l"), f["p"], f["q"],
            f["T"], f["m"], get("M"), self.time_unit, stream, received_us, connection_id,
            position, protocol, snapshot, message_id, k2_version,
        )  # fmt: skip

    def _stream(self, symbol: str, kind: FieldValue) -> str:
        """The combined-stream name of a symbol's trades (remembered per symbol and kind)."""
        stream = self._streams.get((symbol, kind))
        if stream is None:
            stream_kind: wire.StreamKind = "trade" if kind == "trade" else "aggTrade"
            stream = self._streams[(symbol, kind)] = wire.stream_name(symbol, stream_kind)
        return stream

    def record_trade_id(self, record: Mapping[str, Any]) -> int | None:
        if record.get("event_type") != self._event:
            return None
        value = record.get("trade_id" if self._event == "trade" else "agg_trade_id")
        return value if isinstance(value, int) else None

    def exchange_us(self, raw: RawTrade) -> int | None:
        value = raw.fields.get("T")
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        return trade_time_micros(value, self.time_unit)

    def record_exchange_us(self, record: Mapping[str, Any]) -> int | None:
        value = record.get("trade_time")
        unit = record.get("time_unit")
        if not isinstance(value, int):
            return None
        return trade_time_micros(value, "MICROSECOND" if unit == "MICROSECOND" else "MILLISECOND")

    async def backfill(
        self, spec: FeedSpec, symbol: str, first_id: int, last_id: int, after_us: int | None
    ) -> list[RawTrade]:
        rest_url = (spec.rest_url or wire.REST_URL).rstrip("/")
        path, keys = (
            (HISTORICAL_TRADES_PATH, _TRADE_KEYS)
            if self._event == "trade"
            else (AGG_TRADES_PATH, _AGG_KEYS)
        )
        id_key = "t" if self._event == "trade" else "a"
        limit = self.backfill_options.max_trades
        found: list[RawTrade] = []
        next_id = first_id
        position = 0
        while next_id <= last_id and len(found) < limit:
            rows = min(_PAGE_ROWS, last_id - next_id + 1, limit - len(found))
            query = urlencode({"symbol": symbol, "fromId": next_id, "limit": rows})
            payload = await self._get(f"{rest_url}{path}?{query}")
            if not isinstance(payload, list) or not payload:
                break
            received_us = time.time_ns() // 1000
            for row in payload:
                if not isinstance(row, dict):
                    raise BackfillError(f"binance {path} returned a row that is not an object")
                fields: dict[str, FieldValue] = {"e": self._event, "s": symbol}
                for rest_key, stream_key in keys.items():
                    value = row.get(rest_key)
                    fields[stream_key] = value if isinstance(value, str | int | bool) else None
                trade_id = fields.get(id_key)
                if not isinstance(trade_id, int) or not next_id <= trade_id <= last_id:
                    continue
                envelope = Envelope(received_us, "rest", position, "binance-rest")
                position += 1
                found.append(RawTrade(EXCHANGE, symbol, trade_id, fields, envelope))
            newest = found[-1].trade_key if found else None
            if newest is None or newest < next_id:
                break
            next_id = newest + 1
        return found

    async def newest_trade_id(self, spec: FeedSpec, symbol: str) -> int | None:
        """The newest row of ``trades`` (``aggTrades`` for the aggregate stream): its id."""
        rest_url = (spec.rest_url or wire.REST_URL).rstrip("/")
        path, id_key = (
            (RECENT_TRADES_PATH, "id") if self._event == "trade" else (AGG_TRADES_PATH, "a")
        )
        payload = await self._get(f"{rest_url}{path}?{urlencode({'symbol': symbol, 'limit': 1})}")
        if not isinstance(payload, list) or not payload or not isinstance(payload[-1], dict):
            return None
        newest = payload[-1].get(id_key)
        return newest if isinstance(newest, int) else None

    async def _get(self, url: str) -> object:
        headers = {"X-MBX-TIME-UNIT": self.time_unit} if self.time_unit == "MICROSECOND" else {}

        async def request() -> object:
            return await fetch_json(url, _TIMEOUT_S, headers)

        try:
            return await self._pacer.call(request)
        except ExchangeError as exc:
            raise BackfillError(str(exc)) from exc
