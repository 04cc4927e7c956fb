"""Coinbase's adapter for the ingest: feed options, the raw Avro record, and history backfill.

The history that pages by trade id is the Exchange API's public ``GET /products/{id}/trades``
(api.exchange.coinbase.com, no key; the Advanced Trade engine's trades and ids): it returns the
newest trades first and ``after=<id>`` asks for the page older than that id, up to 1,000 rows
("after: Request page after (older) this pagination id", docs.cdp.coinbase.com/exchange/docs/
rest-pagination). The Advanced Trade API's public ``market/products/{id}/ticker`` only returns
recent trades by count or time window, so it cannot fill an id range. A gap ``first..last`` is
read oldest first, a page at a time: ``after`` just past the page's last id, ``limit`` the
page's size. Rows (``time``, ``trade_id``, ``price``, ``size``, ``side``: the maker's, lower
case) become raw trades of protocol ``coinbase-rest`` under the stream's field names, so each
keeps the ``message_id`` of the trade it stands in for; Silver turns their side over.

Public REST is paced at 10 requests a second per IP, the Exchange API's published limit
("Requests per second per IP: 10", docs.cdp.coinbase.com/exchange/rest-api/rate-limits).
When K2 is pointed at another REST base (the simulator), that one base serves the products
list and the history both.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from k2.errors import BackfillError, ExchangeError
from k2.exchanges.base import Envelope, FieldValue, RawTrade
from k2.exchanges.coinbase import EXCHANGE, wire
from k2.exchanges.coinbase.bookfeed import CoinbaseBookFeed
from k2.exchanges.coinbase.client import CoinbaseFeedClient, CoinbaseFeedOptions
from k2.exchanges.coinbase.normalise import REST_PROTOCOL, exchange_micros, record_trade_key
from k2.exchanges.coinbase.normalise import message_id as exchange_message_id
from k2.exchanges.contract import AdapterBase, FeedSpec, simulator_ws_base
from k2.transport.http import fetch_json

PUBLIC_INTERVAL_S = 0.1
SIMULATOR_PATH = "/coinbase"  # where the local simulator serves Coinbase
_TIMEOUT_S = 15.0


class CoinbaseAdapter(AdapterBase):
    """Coinbase's :class:`~k2.exchanges.contract.ExchangeAdapter`."""

    exchange = EXCHANGE
    schema_name = "coinbase_raw"
    public_interval_s = PUBLIC_INTERVAL_S
    client_type = CoinbaseFeedClient
    book_client_type = CoinbaseBookFeed
    options_type = CoinbaseFeedOptions
    record_fields = (
        "exchange_symbol", "trade_id", "price", "size", "side", "time", "sequence_num",
        "timestamp", "event_type", "received_us", "connection_id", "position", "protocol",
        "snapshot", "message_id", "k2_version",
    )  # fmt: skip

    def simulator_urls(self, base_url: str) -> tuple[str, str]:
        return simulator_ws_base(base_url) + SIMULATOR_PATH, base_url.rstrip("/") + SIMULATOR_PATH

    message_id = staticmethod(exchange_message_id)

    def record_values(self, raw: RawTrade, message_id: str, k2_version: str) -> tuple[Any, ...]:
        _, symbol, _, f, envelope, _, snapshot = raw
        received_us, connection_id, position, protocol = envelope
        get = f.get
        return (
            symbol, f["trade_id"], f["price"], f["size"], f["side"], f["time"],
            get("sequence_num"), get("timestamp"), get("event_type"), received_us,
            connection_id, position, protocol, snapshot, message_id, k2_version,
        )  # fmt: skip

    def record_trade_id(self, record: Mapping[str, Any]) -> int | None:
        return record_trade_key(record.get("trade_id"))

    def exchange_us(self, raw: RawTrade) -> int | None:
        return _micros(raw.fields)

    def record_exchange_us(self, record: Mapping[str, Any]) -> int | None:
        return _micros(record)

    async def backfill(
        self, spec: FeedSpec, symbol: str, first_id: int, last_id: int, after_us: int | None
    ) -> list[RawTrade]:
        base = (spec.rest_url or wire.HISTORY_URL).rstrip("/")
        path = f"{base}/products/{quote(symbol, safe='')}/trades"
        limit = self.backfill_options.max_trades
        found: list[RawTrade] = []
        start = first_id
        while start <= last_id and len(found) < limit:
            rows = min(wire.HISTORY_PAGE_ROWS, last_id - start + 1, limit - len(found))
            # after=N: the trades older than N, newest first: ids start .. start+rows-1
            query = urlencode({"after": start + rows, "limit": rows})
            page = _history_rows(await self._get(f"{path}?{query}"))
            received_us = time.time_ns() // 1000
            for row in sorted(page, key=lambda r: r[0]):
                trade_id = row[0]
                if start <= trade_id <= last_id and len(found) < limit:
                    found.append(_rest_trade(symbol, row, received_us, len(found)))
            start += rows
        return found

    async def newest_trade_id(self, spec: FeedSpec, symbol: str) -> int | None:
        """The newest row of the product's history: its id."""
        base = (spec.rest_url or wire.HISTORY_URL).rstrip("/")
        url = f"{base}/products/{quote(symbol, safe='')}/trades?limit=1"
        rows = _history_rows(await self._get(url))
        return max((row[0] for row in rows), default=None)

    async def _get(self, url: str) -> object:
        async def request() -> object:
            return await fetch_json(url, _TIMEOUT_S)

        try:
            return await self._pacer.call(request)
        except ExchangeError as exc:
            raise BackfillError(str(exc)) from exc


_Row = tuple[int, dict[str, str]]
_ROW_TEXT = ("price", "size", "side", "time")


def _micros(fields: Mapping[str, Any]) -> int | None:
    try:
        return exchange_micros(fields)
    except ExchangeError:
        return None


def _text(value: object) -> str | None:
    """A history value as the text it was sent as (a JSON number's exact digits), or None."""
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return format(value, "f") if isinstance(value, Decimal) else str(value)
    return None


def _history_rows(payload: object) -> list[_Row]:
    """``(trade id, its values as text)`` of each whole history row; an error answer raises."""
    if isinstance(payload, dict):
        raise BackfillError(f"coinbase history answered {payload.get('message', payload)}")
    if not isinstance(payload, list):
        raise BackfillError("coinbase history is not a list of trades")
    rows: list[_Row] = []
    for row in payload:
        if not isinstance(row, dict):
            continue
        trade_id = row.get("trade_id")
        values = {name: _text(row.get(name)) for name in _ROW_TEXT}
        if isinstance(trade_id, int) and not isinstance(trade_id, bool):
            texts = {name: value for name, value in values.items() if value is not None}
            if len(texts) == len(_ROW_TEXT):
                rows.append((trade_id, texts))
    return rows


def _rest_trade(symbol: str, row: _Row, received_us: int, position: int) -> RawTrade:
    trade_id, values = row
    fields: dict[str, FieldValue] = {"trade_id": str(trade_id), "product_id": symbol, **values}
    envelope = Envelope(received_us, "rest", position, REST_PROTOCOL)
    return RawTrade(EXCHANGE, symbol, trade_id, fields, envelope)
