"""The Kraken feed client: WebSocket v2 (default) or v1, public ``trade`` channel.

Life of a feed: read ``AssetPairs`` and refuse unknown pairs before connecting (``*``: every pair
listed as online); spread the pairs over connections of at most 250 pairs each (Kraken documents
no per-connection cap; its message rate limit is dynamic, so subscriptions go in requests of 50
pairs, paced); on each connection confirm every pair from its own ack (a rejected pair is a
:class:`~k2.errors.SubscriptionRejectedError` naming it and Kraken's message; ``Exceeded msg
rate`` makes the connection re-send what is still unconfirmed after a pause); then deliver every
trade, gap, malformed frame and control message. Keep-alive is Kraken's application ping; a
connection with no frame of any kind within the liveness deadline (Kraken sends heartbeats every
second) is dropped and replaced (see :mod:`k2.exchanges.feed`).

Replays and gaps: on every (re)subscription Kraken re-sends recent trades (v1 always, v2 when
asked, which K2 always does after a reconnect). v2 trades carry per-pair ``trade_id`` sequence
numbers: replayed ids are dropped and a jump is reported as a :class:`~k2.exchanges.base.Gap`
with the exact missing ids. v1 has no ids: each pair's first trade frame after a subscription is
the snapshot, its trades get the same ``message_id`` as when first received (see
:class:`~k2.exchanges.kraken.normalise.V1OccurrenceCounter`), and those already seen are dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import structlog

from k2.errors import SubscriptionRejectedError, WsConnectionError
from k2.exchanges.base import (
    Control,
    ControlKind,
    Envelope,
    FeedEvent,
    ParsedFrame,
    RawTrade,
    Silence,
)
from k2.exchanges.contract import WHOLE_EXCHANGE, Shard
from k2.exchanges.feed import FeedClientBase, Lane, NewestId
from k2.exchanges.kraken import EXCHANGE, wire
from k2.exchanges.kraken.normalise import V1OccurrenceCounter, v1_message_id
from k2.exchanges.kraken.parse import parse_frame
from k2.exchanges.kraken.symbols import KrakenPair, parse_asset_pairs, resolve_pairs
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS
from k2.transport.http import fetch_json
from k2.transport.ws import Backoff, WsConnection, WsOptions

log = structlog.get_logger(__name__)

KrakenProtocol = Literal["kraken-v1", "kraken-v2"]
_RECENT_V1_IDS = 4 * wire.SNAPSHOT_SIZE  # per pair, to recognise a re-sent v1 snapshot
_SUBSCRIBE_BATCH = 50  # pairs per subscribe request
_RATE_LIMITED = "Exceeded msg rate"


@dataclass(frozen=True, slots=True)
class KrakenFeedOptions:
    """What to subscribe to, where, and how patiently."""

    symbols: tuple[str, ...]
    protocol: KrakenProtocol = "kraken-v2"
    ws_url: str | None = None  # default: Kraken's public URL of the protocol
    rest_url: str = wire.REST_URL
    snapshot: bool = True  # v2 first subscription; reconnects always ask for the snapshot
    ping_interval_s: float = 10.0
    liveness_timeout_s: float = 10.0
    subscribe_timeout_s: float = 10.0
    silence_warning_s: float = 300.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    reference_timeout_s: float = 15.0
    reference_refresh_s: float | None = 300.0
    max_symbols_per_connection: int | None = None
    max_frame_chars: int = DEFAULT_MAX_FRAME_CHARS
    book_depth: int = 10  # levels a side of the book channel (a book feed's)
    last_trade_ids: Mapping[str, int] = field(default_factory=dict)  # v2 name → id, resume
    shard: Shard = WHOLE_EXCHANGE

    @property
    def url(self) -> str:
        if self.ws_url is not None:
            return self.ws_url
        return wire.V1_URL if self.protocol == "kraken-v1" else wire.V2_URL


class _RecentIds:
    """The last ``capacity`` message ids of one pair (bounded, insertion ordered)."""

    def __init__(self, capacity: int) -> None:
        self._order: deque[str] = deque()
        self._members: set[str] = set()
        self._capacity = capacity

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._members

    def add(self, message_id: str) -> None:
        self._order.append(message_id)
        self._members.add(message_id)
        if len(self._order) > self._capacity:
            self._members.discard(self._order.popleft())


@dataclass(slots=True)
class _Session:
    """State of one connection's subscriptions."""

    conn: WsConnection
    pending: set[str]
    deadline: float
    confirmed: bool = False
    counter: V1OccurrenceCounter = field(default_factory=V1OccurrenceCounter)
    snapshot_pending: set[str] = field(default_factory=set)
    rate_limited: bool = False
    resyncing: set[str] = field(default_factory=set)  # unsubscribed on purpose, to resubscribe


class KrakenFeedClient(FeedClientBase):
    """Kraken public trades as :data:`~k2.exchanges.base.FeedEvent` s (implements FeedClient)."""

    exchange = EXCHANGE
    channel: ClassVar[str] = "trade"  # the channel a lane subscribes its symbols to
    max_symbols_per_connection = 250
    connect_rate_per_s = 0.25  # Cloudflare allows about 150 connection attempts per 10 minutes
    connect_burst = 10.0

    def __init__(
        self,
        options: KrakenFeedOptions,
        on_silence: Callable[[Silence], None] | None = None,
        newest_id: NewestId | None = None,
    ) -> None:
        super().__init__(options, on_silence, newest_id)
        self.options: KrakenFeedOptions = options
        self.protocol = options.protocol
        self._recent: dict[str, _RecentIds] = {}
        self._reqid = 0

    async def reference_data(self) -> dict[str, KrakenPair]:
        url = self.options.rest_url.rstrip("/") + wire.ASSET_PAIRS_PATH
        return parse_asset_pairs(await fetch_json(url, self.options.reference_timeout_s))

    resolve = staticmethod(resolve_pairs)

    def trading(self, listing: KrakenPair) -> bool:
        return listing.status == "online"

    def native(self, listing: KrakenPair) -> str:
        return listing.native(self.protocol)

    def lane_url(self, lane: Lane) -> str:
        return self.options.url

    def ws_options(self) -> WsOptions:
        return WsOptions(liveness_timeout_s=self.options.liveness_timeout_s, ping_interval_s=None)

    def parse(self, text: str, envelope: Envelope) -> ParsedFrame:
        return parse_frame(text, envelope, self.options.max_frame_chars)

    def new_session(self, lane: Lane, conn: WsConnection) -> _Session:
        deadline = time.monotonic() + self.options.subscribe_timeout_s
        return _Session(conn, set(lane.symbols), deadline)

    def _next_reqid(self) -> int:
        self._reqid += 1
        return self._reqid

    def channel_depth(self) -> int | None:
        """The depth the channel is subscribed at (a book's; None for trades)."""
        return None

    def _subscribe_request(self, symbols: Sequence[str], snapshot: bool) -> str:
        channel, depth = self.channel, self.channel_depth()
        if self.protocol == "kraken-v1":
            return wire.v1_subscribe(symbols, self._next_reqid(), channel, depth)
        return wire.v2_subscribe(symbols, snapshot, self._next_reqid(), channel, depth)

    def _unsubscribe_request(self, symbols: Sequence[str]) -> str:
        channel, depth = self.channel, self.channel_depth()
        if self.protocol == "kraken-v1":
            return wire.v1_unsubscribe(symbols, self._next_reqid(), channel, depth)
        return wire.v2_unsubscribe(symbols, self._next_reqid(), channel, depth)

    async def _subscribe(self, session: _Session, symbols: Sequence[str], snapshot: bool) -> None:
        for start in range(0, len(symbols), _SUBSCRIBE_BATCH):
            chunk = symbols[start : start + _SUBSCRIBE_BATCH]
            await session.conn.send_control(self._subscribe_request(chunk, snapshot))

    async def run_session(self, lane: Lane, conn: WsConnection) -> WsConnection | None:
        session: _Session = lane.session
        first = lane.connections == 1
        await self._subscribe(session, lane.symbols, self.options.snapshot or not first)
        closed = asyncio.ensure_future(conn.wait_closed())
        retry = Backoff(1.0, 30.0)
        interval = self.options.ping_interval_s
        next_ping = time.monotonic() + interval
        try:
            while True:
                done, _ = await asyncio.wait({closed}, timeout=min(1.0, interval))
                if done:
                    closed.result()  # raises why the connection ended
                await self.on_tick(lane)
                now = time.monotonic()
                if now >= next_ping:
                    next_ping = now + interval
                    ping = wire.v1_ping if self.protocol == "kraken-v1" else wire.v2_ping
                    await conn.send_control(ping(self._next_reqid()))
                if session.rate_limited and session.pending:
                    await self._resubscribe_later(session, retry)
                elif session.pending and now > session.deadline:
                    missing = ", ".join(sorted(session.pending)[:10])
                    raise WsConnectionError(f"kraken did not confirm the subscription to {missing}")
        finally:
            closed.cancel()

    async def resubscribe(self, lane: Lane, symbols: Sequence[str]) -> None:
        """Unsubscribe ``symbols`` and subscribe them again, with a snapshot, on the lane's open
        connection (their acks are awaited like the first subscription's)."""
        session: _Session | None = lane.session
        if session is None:
            return
        session.resyncing.update(symbols)
        for start in range(0, len(symbols), _SUBSCRIBE_BATCH):
            chunk = symbols[start : start + _SUBSCRIBE_BATCH]
            await session.conn.send_control(self._unsubscribe_request(chunk))
        session.pending.update(symbols)
        session.deadline = time.monotonic() + self.options.subscribe_timeout_s
        await self._subscribe(session, symbols, True)

    async def _resubscribe_later(self, session: _Session, retry: Backoff) -> None:
        """After ``Exceeded msg rate``: wait, then re-send what is still unconfirmed."""
        session.rate_limited = False
        delay = max(0.5, retry.next_delay())
        pending = len(session.pending)
        log.warning("ws_rate_limited", exchange=EXCHANGE, pending=pending, wait_s=delay)
        await asyncio.sleep(delay)
        session.deadline = time.monotonic() + self.options.subscribe_timeout_s + delay
        await self._subscribe(session, sorted(session.pending), True)

    async def change_subscriptions(
        self, lane: Lane, added: Sequence[str], removed: Sequence[str]
    ) -> None:
        session: _Session | None = lane.session
        if session is None:
            return
        if removed:
            for start in range(0, len(removed), _SUBSCRIBE_BATCH):
                chunk = removed[start : start + _SUBSCRIBE_BATCH]
                await session.conn.send_control(self._unsubscribe_request(chunk))
        if added:
            session.pending.update(added)
            session.deadline = time.monotonic() + self.options.subscribe_timeout_s
            await self._subscribe(session, added, self.options.snapshot)

    def on_control(self, lane: Lane, control: Control) -> None:
        session: _Session = lane.session
        kind, symbol, detail = control.kind, control.symbol, control.detail
        if kind == ControlKind.STATUS:
            if detail.get("connection_id") is not None:
                lane.connection_id = str(detail["connection_id"])
            status = detail.get("status", detail.get("system"))
            if status != "online":
                log.warning("exchange_status_received", exchange=EXCHANGE, status=status)
        elif kind == ControlKind.SUBSCRIBED:
            self._confirmed(lane, session, symbol, detail)
        elif kind == ControlKind.SUBSCRIPTION_REJECTED:
            message = str(detail.get("message", "no reason given"))
            if _RATE_LIMITED in message:
                session.rate_limited = True
                return
            named = symbol or _symbol_in(message, lane.symbols) or "?"
            raise SubscriptionRejectedError(
                f"kraken rejected the subscription to {named}: {message}"
            )
        elif kind == ControlKind.UNSUBSCRIBED and symbol in session.resyncing:
            session.resyncing.discard(symbol)
        elif kind == ControlKind.UNSUBSCRIBED and symbol in lane.symbols:
            raise WsConnectionError(f"kraken unsubscribed {symbol}; resubscribing")
        elif kind == ControlKind.ERROR:
            message = str(detail.get("message"))
            if _RATE_LIMITED in message:
                session.rate_limited = True
            self.warn_once(message)

    def _confirmed(
        self, lane: Lane, session: _Session, symbol: str | None, detail: Mapping[str, object]
    ) -> None:
        channel = str(detail.get("channel_name", detail.get("channel", "trade")))
        if channel.split("-")[0] != self.channel:  # v1 names a book channel "book-<depth>"
            return
        if symbol is not None:
            session.pending.discard(symbol)
            session.snapshot_pending.add(symbol)
        log.debug("ws_symbol_subscribed", exchange=EXCHANGE, symbol=symbol)
        if not session.pending and not session.confirmed:
            session.confirmed = True
            log.info("ws_subscribed", exchange=EXCHANGE, lane=lane.index, symbols=len(lane.symbols))
            self.connected(lane)

    def accept_trades(self, lane: Lane, trades: Sequence[RawTrade]) -> list[FeedEvent]:
        if self.protocol != "kraken-v1":
            return super().accept_trades(lane, trades)
        session: _Session = lane.session
        pair = trades[0].native_symbol
        snapshot = pair in session.snapshot_pending
        session.snapshot_pending.discard(pair)
        recent = self._recent.setdefault(pair, _RecentIds(_RECENT_V1_IDS))
        events: list[FeedEvent] = []
        for raw in trades:
            trade = session.counter.assign(raw)
            if snapshot:
                trade = trade._replace(snapshot=True)
            message_id = v1_message_id(pair, trade.fields, trade.occurrence)
            if snapshot and message_id in recent:
                self.stats.duplicates_dropped += 1
                continue
            recent.add(message_id)
            self._silence.seen(pair)
            self.stats.trades += 1
            events.append(trade)
        return events


def _symbol_in(message: str, symbols: Sequence[str]) -> str | None:
    """The subscribed symbol an exchange message names (Kraken sometimes omits the field)."""
    return next((symbol for symbol in symbols if message.endswith(symbol)), None)
