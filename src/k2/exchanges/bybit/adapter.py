"""Bybit's adapter for the ingest: feed options, the raw Avro record, and what history allows.

Bybit's public REST history is ``GET /v5/market/recent-trade``: the newest trades of a symbol,
at most 60 on spot (``limit`` [1, 60], ``docs/v5/market/recent-trade.mdx``), newest first, with
no way to page further back or to ask by id. Spot trade ids are shared by every symbol (see
:mod:`k2.exchanges.bybit.client`), so a symbol's ids never reveal a gap: ``newest_trade_id`` is
None and no id range is ever backfilled. What a reconnect or a restart may have lost is the
time interval between the last trade delivered before the break and the first one after it;
:meth:`BybitAdapter.backfill_interval` reads ``recent-trade`` once and keeps the rows whose ids
fall strictly between those two trades' (ids rise with time across the shared counter). When
the answer reaches back to the trade before the break (or holds fewer rows than asked, i.e.
everything Bybit has), the interval is filled; otherwise the trades older than its oldest row
cannot be read back, and the gap event says so.

Rows become raw trades of protocol ``bybit-rest`` under the push's own keys (``execId`` → ``i``,
``price`` → ``p``, ``size`` → ``v``, ``side`` → ``S``, ``time`` → ``T`` (sent as a string of ms,
kept as its integer), ``isBlockTrade`` → ``BT``), so each keeps the ``message_id`` of the live
trade it stands in for; they carry no ``seq`` and no frame ``ts``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from k2.domain import datetime_from_micros
from k2.errors import BackfillError, ExchangeError
from k2.exchanges.base import Envelope, FieldValue, RawTrade
from k2.exchanges.bybit import EXCHANGE, wire
from k2.exchanges.bybit.bookfeed import BybitBookFeed
from k2.exchanges.bybit.client import BybitFeedClient, BybitFeedOptions
from k2.exchanges.bybit.fastparse import trade_key
from k2.exchanges.bybit.normalise import message_id as exchange_message_id
from k2.exchanges.contract import (
    AdapterBase,
    FeedSpec,
    Interval,
    IntervalFill,
    simulator_ws_base,
)
from k2.transport.http import fetch_json

REST_PROTOCOL = "bybit-rest"
# 600 requests per 5 s per IP for all of REST: 20 a second leaves most of it to other users.
PUBLIC_INTERVAL_S = 0.05
_TIMEOUT_S = 15.0
_REST_KEYS = {"execId": "i", "symbol": "s", "price": "p", "size": "v", "side": "S"}


class BybitAdapter(AdapterBase):
    """Bybit's :class:`~k2.exchanges.contract.ExchangeAdapter`."""

    exchange = EXCHANGE
    schema_name = "bybit_raw"
    public_interval_s = PUBLIC_INTERVAL_S
    ids_per_symbol = False
    client_type = BybitFeedClient
    book_client_type = BybitBookFeed
    options_type = BybitFeedOptions
    record_fields = (
        "exchange_symbol", "trade_id", "trade_time", "price", "size", "side", "seq",
        "block_trade", "rpi", "tick_direction", "frame_ts", "frame_type", "received_us",
        "connection_id", "position", "protocol", "message_id", "k2_version",
    )  # fmt: skip

    def simulator_urls(self, base_url: str) -> tuple[str, str]:
        return simulator_ws_base(base_url) + wire.WS_PATH, base_url.rstrip("/")

    message_id = staticmethod(exchange_message_id)

    def record_values(self, raw: RawTrade, message_id: str, k2_version: str) -> tuple[Any, ...]:
        _, symbol, _, f, envelope, _, _ = raw
        received_us, connection_id, position, protocol = envelope
        get = f.get
        return (
            symbol, f["i"], f["T"], f["p"], f["v"], f["S"], get("seq"), get("BT"), get("RPI"),
            get("L"), get("ts"), get("type"), received_us, connection_id, position, protocol,
            message_id, k2_version,
        )  # fmt: skip

    def record_trade_id(self, record: Mapping[str, Any]) -> int | None:
        """The record's id as an integer: not a sequence of its symbol, but the last one
        delivered, below which a live trade is a replay."""
        value = record.get("trade_id")
        return trade_key(value) if isinstance(value, str) else None

    def exchange_us(self, raw: RawTrade) -> int | None:
        value = raw.fields.get("T")
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        return value * 1000

    def record_exchange_us(self, record: Mapping[str, Any]) -> int | None:
        value = record.get("trade_time")
        return value * 1000 if isinstance(value, int) and not isinstance(value, bool) else None

    async def backfill(
        self, spec: FeedSpec, symbol: str, first_id: int, last_id: int, after_us: int | None
    ) -> list[RawTrade]:
        """Never asked: Bybit's ids reveal no gap (:attr:`ids_per_symbol` is False)."""
        raise BackfillError("bybit spot trade ids are shared by every symbol: no id range exists")

    async def backfill_interval(self, spec: FeedSpec, interval: Interval) -> IntervalFill:
        """The trades of ``interval`` that ``recent-trade`` still holds, oldest first."""
        try:
            rows = await self._recent(spec, interval.symbol)
        except BackfillError as exc:
            return IntervalFill([], False, f"bybit recent-trade could not be read: {exc}")
        received_us = time.time_ns() // 1000
        trades = [
            trade
            for position, row in enumerate(reversed(rows))
            if (trade := _rest_trade(interval.symbol, row, received_us, position)) is not None
        ]
        inside = [trade for trade in trades if _within(trade, interval)]
        if len(rows) < wire.RECENT_TRADES_SPOT or any(_before(t, interval) for t in trades):
            return IntervalFill(inside, True, None)
        oldest = min((_time_us(t) for t in trades), default=None)
        since = "its newest trades" if oldest is None else datetime_from_micros(oldest)
        reason = (
            f"bybit keeps only the newest {wire.RECENT_TRADES_SPOT} spot trades of a symbol in "
            f"recent-trade and pages no further back: trades before {since} cannot be read back"
        )
        return IntervalFill(inside, False, reason)

    async def _recent(self, spec: FeedSpec, symbol: str) -> list[dict[str, Any]]:
        rest_url = (spec.rest_url or wire.REST_URL).rstrip("/")
        query = urlencode(
            {"category": wire.CATEGORY, "symbol": symbol, "limit": wire.RECENT_TRADES_SPOT}
        )
        url = f"{rest_url}{wire.RECENT_TRADES_PATH}?{query}"

        async def request() -> object:
            return await fetch_json(url, _TIMEOUT_S)

        try:
            payload = await self._pacer.call(request)
        except ExchangeError as exc:
            raise BackfillError(str(exc)) from exc
        if not isinstance(payload, dict) or payload.get("retCode") != 0:
            message = payload.get("retMsg") if isinstance(payload, dict) else "not an object"
            raise BackfillError(f"recent-trade answered {message}")
        result = payload.get("result")
        rows = result.get("list") if isinstance(result, dict) else None
        if not isinstance(rows, list):
            raise BackfillError("recent-trade answered without a result list")
        return [row for row in rows if isinstance(row, dict)]


def _rest_trade(
    symbol: str, row: Mapping[str, Any], received_us: int, position: int
) -> RawTrade | None:
    """A ``recent-trade`` row as a raw trade under the push's keys; None for a row K2 cannot
    read (a value of the wrong type, another symbol)."""
    fields: dict[str, FieldValue] = {}
    for rest_key, key in _REST_KEYS.items():
        value = row.get(rest_key)
        if not isinstance(value, str):
            return None
        fields[key] = value
    when, block = row.get("time"), row.get("isBlockTrade")
    if not isinstance(when, str) or not when.isascii() or not when.isdigit():
        return None
    fields["T"] = int(when)
    if isinstance(block, bool):
        fields["BT"] = block
    if fields["s"] != symbol:
        return None
    envelope = Envelope(received_us, "rest", position, REST_PROTOCOL)
    return RawTrade(EXCHANGE, symbol, trade_key(str(fields["i"])), fields, envelope)


def _within(trade: RawTrade, interval: Interval) -> bool:
    """Strictly between the trade before the break and the first after it: by id where both
    are known (ids rise with time), else by match time."""
    key = trade.trade_key
    if key is not None and interval.after_id is not None and interval.before_id is not None:
        return interval.after_id < key < interval.before_id
    when = _time_us(trade)
    return interval.from_us <= when <= interval.to_us and key not in (
        interval.after_id,
        interval.before_id,
    )


def _before(trade: RawTrade, interval: Interval) -> bool:
    """At or before the trade before the break: the answer reaches back over the interval."""
    key = trade.trade_key
    if key is not None and interval.after_id is not None:
        return key <= interval.after_id
    return _time_us(trade) < interval.from_us


def _time_us(trade: RawTrade) -> int:
    """The match time of a trade :func:`_rest_trade` made (``T`` is always an int there)."""
    return int(trade.fields["T"] or 0) * 1000
