"""The Bybit v5 spot feed client: ``publicTrade.<SYMBOL>`` on ``/v5/public/spot``.

Life of a feed: read ``instruments-info`` and refuse unknown symbols before connecting (``*``:
every symbol listed as ``Trading``); spread the topics over connections whose ``args`` stay
within Bybit's 21,000 characters a connection, opened within its 500 connections per 5 minutes;
subscribe in requests of at most 10 topics (spot's limit; a larger request is refused whole) and
confirm each request from its own ack: ``success: false`` naming a symbol is a
:class:`~k2.errors.SubscriptionRejectedError` naming it and Bybit's message. Keep-alive is
Bybit's JSON ``{"op":"ping"}`` every 20 s (the documented advice; Bybit cuts a connection with
neither pings nor data after 10 minutes); no frame of any kind within the liveness deadline
means a dead connection, replaced with backoff (see :mod:`k2.exchanges.feed`).

Ids and gaps: Bybit sends no snapshot on subscribing, and spot trade ids come from one counter
shared by every symbol (documented for the v1 spot feed, "shared across different symbols ...
consecutive: 112, 113, 114"; live v5 captures show a symbol's ids jumping within one
millisecond, e.g. BTCUSDT 2290000001211680903 then ...919), so a jump in a symbol's ids says
nothing about missed trades. The ids still rise with time, so a trade at or below the last id
seen of its symbol is a replay and dropped (:class:`SharedIdTracker`), but no jump is ever
reported as a gap: what a reconnect or a restart may have lost is a time interval, which the
ingest reports and fills from ``recent-trade`` as far as that reaches (see the adapter).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from k2.errors import SubscriptionRejectedError, WsConnectionError
from k2.exchanges.base import (
    Control,
    ControlKind,
    Envelope,
    ParsedFrame,
    SequenceTracker,
    SequenceVerdict,
    Silence,
)
from k2.exchanges.bybit import EXCHANGE, wire
from k2.exchanges.bybit.fastparse import parse_trades
from k2.exchanges.bybit.parse import parse_frame
from k2.exchanges.bybit.symbols import (
    BybitSymbol,
    asset_map,
    parse_instruments,
    resolve_symbols,
)
from k2.exchanges.bybit.symbols import trading as listed_trading
from k2.exchanges.contract import WHOLE_EXCHANGE, Shard
from k2.exchanges.feed import FeedClientBase, Lane, NewestId
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS
from k2.transport.http import fetch_json
from k2.transport.ws import WsConnection, WsOptions

log = structlog.get_logger(__name__)

PROTOCOL = "bybit-spot"
_SYMBOL_CHARS = 30  # the longest spot symbol a connection's args budget allows for
_ALREADY = "already subscribed"
_IN_ORDER = SequenceVerdict()
_REPLAY = SequenceVerdict(duplicate=True)


class SharedIdTracker(SequenceTracker):
    """Per-symbol ids that rise but skip, because one counter numbers every symbol's trades:
    an id at or below the symbol's last one is a replay; a jump is no gap."""

    def observe(self, symbol: str, trade_id: int) -> SequenceVerdict:
        last = self._last.get(symbol)
        if last is not None and trade_id <= last:
            return _REPLAY
        self._last[symbol] = trade_id
        return _IN_ORDER

    def advance(self, symbol: str, newest_id: int) -> None:
        """Never a gap: a newer id elsewhere in the shared sequence proves nothing missing."""
        return None


@dataclass(frozen=True, slots=True)
class BybitFeedOptions:
    """What to subscribe to, where, and how patiently."""

    symbols: tuple[str, ...]
    ws_url: str = wire.WS_URL
    rest_url: str = wire.REST_URL
    ping_interval_s: float = wire.PING_INTERVAL_S
    liveness_timeout_s: float = 50.0  # a pong answers every 20 s ping: two missed, and a margin
    subscribe_timeout_s: float = 10.0
    silence_warning_s: float = 300.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    reference_timeout_s: float = 15.0
    reference_refresh_s: float | None = 300.0
    max_symbols_per_connection: int | None = None
    max_frame_chars: int = DEFAULT_MAX_FRAME_CHARS
    book_depth: int = 50  # levels a side of the order book topic (a book feed's)
    last_trade_ids: Mapping[str, int] = field(default_factory=dict)  # native symbol → id
    shard: Shard = WHOLE_EXCHANGE

    @property
    def protocol(self) -> str:
        return PROTOCOL


@dataclass(slots=True)
class _Session:
    """One connection's subscriptions: requests not yet acknowledged, by ``req_id``."""

    conn: WsConnection
    pending: dict[str, list[str]] = field(default_factory=dict)
    deadline: float = 0.0
    confirmed: bool = False


class BybitFeedClient(FeedClientBase):
    """Bybit spot public trades as :data:`~k2.exchanges.base.FeedEvent` s (a FeedClient)."""

    exchange = EXCHANGE
    tracker_type = SharedIdTracker
    max_symbols_per_connection = wire.connection_budget(_SYMBOL_CHARS)
    # 500 connection attempts per 5 minutes per domain: one a second stays well inside.
    connect_rate_per_s = 1.0
    connect_burst = 20.0

    def __init__(
        self,
        options: BybitFeedOptions,
        on_silence: Callable[[Silence], None] | None = None,
        newest_id: NewestId | None = None,
    ) -> None:
        super().__init__(options, on_silence, newest_id)
        self.options: BybitFeedOptions = options
        self.protocol = PROTOCOL
        self.assets: dict[str, tuple[str, str]] = {}  # native → (base, quote), for normalise
        self._req_ids = itertools.count(1)

    async def reference_data(self) -> dict[str, BybitSymbol]:
        """The listed spot symbols; their coins are kept for normalisation."""
        url = f"{self.options.rest_url.rstrip('/')}{wire.INSTRUMENTS_PATH}?category={wire.CATEGORY}"
        listed = parse_instruments(await fetch_json(url, self.options.reference_timeout_s))
        self.assets.update(asset_map(listed.values()))
        return listed

    resolve = staticmethod(resolve_symbols)
    trading = staticmethod(listed_trading)

    def native(self, listing: BybitSymbol) -> str:
        return listing.symbol

    def lane_url(self, lane: Lane) -> str:
        return self.options.ws_url

    def ws_options(self) -> WsOptions:
        # Bybit documents no rate for requests on a public connection; ten a second sends the
        # subscriptions of a full connection (47 requests) within five seconds.
        return WsOptions(
            liveness_timeout_s=self.options.liveness_timeout_s,
            ping_interval_s=None,  # the keep-alive is Bybit's JSON ping, sent by the session
            control_rate_per_s=10.0,
            control_burst=10.0,
        )

    def parse(self, text: str, envelope: Envelope) -> ParsedFrame:
        if len(text) <= self.options.max_frame_chars:  # the common trade push, one call less
            fast = parse_trades(text, envelope)
            if fast is not None:
                return fast
        return parse_frame(text, envelope, self.options.max_frame_chars)

    def new_session(self, lane: Lane, conn: WsConnection) -> _Session:
        return _Session(conn)

    def _req_id(self) -> str:
        return str(next(self._req_ids))

    def topic(self, symbol: str) -> str:
        """The topic this feed subscribes for ``symbol``."""
        return wire.topic(symbol)

    async def _request(self, session: _Session, op: str, symbols: Sequence[str]) -> None:
        """``op`` for ``symbols``, ten topics a request; subscriptions await their acks."""
        render = wire.subscribe if op == "subscribe" else wire.unsubscribe
        for start in range(0, len(symbols), wire.MAX_ARGS_PER_REQUEST):
            chunk = list(symbols[start : start + wire.MAX_ARGS_PER_REQUEST])
            req_id = self._req_id()
            if op == "subscribe":
                session.pending[req_id] = chunk
                session.deadline = time.monotonic() + self.options.subscribe_timeout_s
            await session.conn.send_control(render([self.topic(s) for s in chunk], req_id))

    async def run_session(self, lane: Lane, conn: WsConnection) -> WsConnection | None:
        session: _Session = lane.session
        await self._request(session, "subscribe", lane.symbols)
        closed = asyncio.ensure_future(conn.wait_closed())
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
                    await conn.send_control(wire.ping(self._req_id()))
                if session.pending and now > session.deadline:
                    waiting = [s for chunk in session.pending.values() for s in chunk]
                    names = ", ".join(waiting[:10])
                    raise WsConnectionError(f"bybit did not confirm the subscription to {names}")
        finally:
            closed.cancel()

    async def change_subscriptions(
        self, lane: Lane, added: Sequence[str], removed: Sequence[str]
    ) -> None:
        session: _Session | None = lane.session
        if session is None:
            return
        if removed:
            await self._request(session, "unsubscribe", removed)
        if added:
            await self._request(session, "subscribe", added)

    def on_control(self, lane: Lane, control: Control) -> None:
        session: _Session = lane.session
        detail = control.detail
        if detail.get("conn_id") is not None:
            lane.connection_id = str(detail["conn_id"])
        if detail.get("op") != "subscribe":
            if control.kind == ControlKind.ERROR:
                self.warn_once(str(detail.get("message")))
            return
        message = str(detail.get("message") or "no reason given")
        refused = control.kind == ControlKind.SUBSCRIPTION_REJECTED or (
            control.kind == ControlKind.ERROR and _ALREADY not in message
        )
        chunk = self._answered(session, detail.get("req_id"))
        if refused:
            named = str(detail.get("symbols") or ", ".join(chunk) or "?")
            raise SubscriptionRejectedError(f"bybit refused the subscription to {named}: {message}")
        if not session.pending and not session.confirmed:
            session.confirmed = True
            log.info("ws_subscribed", exchange=EXCHANGE, lane=lane.index, symbols=len(lane.symbols))
            self.connected(lane)

    @staticmethod
    def _answered(session: _Session, req_id: object) -> list[str]:
        """The symbols of the request an ack answers (by its ``req_id``, else the oldest)."""
        if isinstance(req_id, str) and req_id in session.pending:
            return session.pending.pop(req_id)
        if session.pending and not req_id:
            return session.pending.pop(next(iter(session.pending)))
        return []
