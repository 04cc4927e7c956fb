"""OKX's adapter for the ingest: feed options, the raw Avro record, and REST backfill.

Backfill pages ``GET /api/v5/market/history-trades?instId=&type=1&after=<tradeId>&limit=100``
(``type=1`` pages by trade id; ``after`` returns the trades older than that id, newest first, at
most 100 a request; 20 requests per 2 s per IP; the last three months are kept), from just past
the gap's newest id down to its oldest. Rows ``{instId, side, sz, source, px, tradeId, ts}`` are
the fields of the ``trades-all`` row they stand in for, so a backfilled trade keeps its
``message_id``; they become raw trades of protocol ``okx-rest`` (no ``channel``). The newest id of
an instrument is the first row of ``GET /api/v5/market/trades?instId=&limit=1``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from k2.errors import BackfillError, ExchangeError
from k2.exchanges.base import Envelope, FieldValue, RawTrade
from k2.exchanges.contract import AdapterBase, FeedSpec, simulator_ws_base
from k2.exchanges.okx import EXCHANGE, wire
from k2.exchanges.okx.bookfeed import OkxBookFeed
from k2.exchanges.okx.client import OkxFeedClient, OkxFeedOptions
from k2.exchanges.okx.normalise import exchange_us, message_id
from k2.exchanges.okx.parse import trade_key
from k2.transport.http import fetch_json

# history-trades allows 20 requests per 2 s per IP; 6-7 a second leaves room for the rest.
PUBLIC_INTERVAL_S = 0.15
_TIMEOUT_S = 15.0
_REST_FIELDS = ("instId", "tradeId", "px", "sz", "side", "ts", "source")


class OkxAdapter(AdapterBase):
    """OKX's :class:`~k2.exchanges.contract.ExchangeAdapter`."""

    exchange = EXCHANGE
    schema_name = "okx_raw"
    public_interval_s = PUBLIC_INTERVAL_S
    client_type = OkxFeedClient
    book_client_type = OkxBookFeed
    options_type = OkxFeedOptions
    record_fields = (
        "exchange_symbol", "trade_id", "price", "quantity", "side", "ts", "source", "count",
        "seq_id", "channel", "received_us", "connection_id", "position", "protocol", "snapshot",
        "message_id", "k2_version",
    )  # fmt: skip

    def simulator_urls(self, base_url: str) -> tuple[str, str]:
        return simulator_ws_base(base_url) + wire.BUSINESS_PATH, base_url.rstrip("/")

    message_id = staticmethod(message_id)

    def record_values(self, raw: RawTrade, message_id: str, k2_version: str) -> tuple[Any, ...]:
        _, symbol, _, f, envelope, _, snapshot = raw
        received_us, connection_id, position, protocol = envelope
        get = f.get
        return (
            symbol, f["tradeId"], f["px"], f["sz"], f["side"], f["ts"], get("source"),
            get("count"), get("seqId"), get("channel"), received_us, connection_id, position,
            protocol, snapshot, message_id, k2_version,
        )  # fmt: skip

    def record_trade_id(self, record: Mapping[str, Any]) -> int | None:
        value = record.get("trade_id")
        return trade_key(value) if isinstance(value, str) else None

    def exchange_us(self, raw: RawTrade) -> int | None:
        return exchange_us(raw.fields)

    def record_exchange_us(self, record: Mapping[str, Any]) -> int | None:
        return exchange_us(record)

    async def backfill(
        self, spec: FeedSpec, symbol: str, first_id: int, last_id: int, after_us: int | None
    ) -> list[RawTrade]:
        rest_url = (spec.rest_url or wire.REST_URL).rstrip("/")
        limit = self.backfill_options.max_trades
        found: dict[int, RawTrade] = {}
        cursor = last_id + 1  # history pages go back in time: ids below ``after``
        while cursor > first_id and len(found) < limit:
            rows = min(wire.HISTORY_PAGE_ROWS, cursor - first_id, limit - len(found))
            query = urlencode(
                {"instId": symbol, "type": "1", "after": str(cursor), "limit": str(rows)}
            )
            page = _rows(await self._get(f"{rest_url}{wire.HISTORY_TRADES_PATH}?{query}"))
            received_us = time.time_ns() // 1000
            oldest = cursor
            for row in page:
                trade = _rest_trade(symbol, row, received_us, len(found))
                key = trade.trade_key
                assert key is not None  # _rest_trade refuses rows without an id
                oldest = min(oldest, key)
                if first_id <= key <= last_id and len(found) < limit:
                    found.setdefault(key, trade)
            if not page or oldest >= cursor:
                break
            cursor = oldest
        return [found[key] for key in sorted(found)]

    async def newest_trade_id(self, spec: FeedSpec, symbol: str) -> int | None:
        """The id of the first (newest) row of ``market/trades``."""
        rest_url = (spec.rest_url or wire.REST_URL).rstrip("/")
        query = urlencode({"instId": symbol, "limit": "1"})
        page = _rows(await self._get(f"{rest_url}{wire.TRADES_PATH}?{query}"))
        newest = page[0].get("tradeId") if page else None
        return trade_key(newest) if isinstance(newest, str) else None

    async def _get(self, url: str) -> object:
        async def request() -> object:
            return await fetch_json(url, _TIMEOUT_S)

        try:
            return await self._pacer.call(request)
        except ExchangeError as exc:
            raise BackfillError(str(exc)) from exc


def _rows(payload: object) -> list[dict[str, Any]]:
    """The ``data`` rows of an OKX REST answer; BackfillError for an error code or a bad shape."""
    if not isinstance(payload, dict):
        raise BackfillError("okx answered with something that is not a JSON object")
    if payload.get("code") != "0":
        raise BackfillError(f"okx answered code {payload.get('code')!r}: {payload.get('msg')}")
    data = payload.get("data")
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise BackfillError("okx answered without a data list of rows")
    return data


def _rest_trade(symbol: str, row: Mapping[str, Any], received_us: int, position: int) -> RawTrade:
    fields: dict[str, FieldValue] = {}
    for name in _REST_FIELDS:
        value = row.get(name)
        if isinstance(value, str):
            fields[name] = value
        elif name != "source":
            raise BackfillError(f"okx history row without {name} as text: {dict(row)}")
    key = trade_key(str(fields["tradeId"]))
    if key is None or fields["instId"] != symbol:
        raise BackfillError(f"okx history row of another instrument or id: {dict(row)}")
    envelope = Envelope(received_us, "rest", position, "okx-rest")
    return RawTrade(EXCHANGE, symbol, key, fields, envelope)
