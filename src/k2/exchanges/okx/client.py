"""The OKX v5 feed client: ``trades-all`` on the business endpoint, one row per trade.

Life of a feed: read the SPOT instruments and refuse unknown names before connecting (``*``:
every instrument whose ``state`` is ``live``); spread the instruments over connections of at most
300 (OKX documents no per-connection cap; a request's channels must stay under 64 KB, which 300
arguments do with room to spare); on each connection subscribe in requests under 64 KB, every
request and every connection attempt taken from one budget paced below the exchange's 3 requests
per second per IP, and at most 480 subscribe/unsubscribe requests per connection per hour; then
confirm every instrument from its own ``subscribe`` event (an ``error`` event with code 60018,
an instrument the exchange does not have, is a :class:`~k2.errors.SubscriptionRejectedError`
naming it and OKX's message). Keep-alive is OKX's text ``ping``, sent when nothing arrived for
``ping_idle_s`` (under the exchange's 30 s idle cut) and answered with ``pong``; no frame of any
kind within the liveness deadline means a dead connection, replaced with backoff.

``trades-all`` sends no snapshot on (re)subscribe: after a reconnect the first id per instrument
is compared with the last one seen, and the ids in between are a
:class:`~k2.exchanges.base.Gap` (``detected_by="reconnect"``) the ingest backfills from REST.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import structlog

from k2.errors import SubscriptionRejectedError, WsConnectionError
from k2.exchanges.base import Control, ControlKind, Envelope, ParsedFrame, Protocol_, Silence
from k2.exchanges.contract import WHOLE_EXCHANGE, Shard
from k2.exchanges.feed import FeedClientBase, Lane, NewestId
from k2.exchanges.okx import EXCHANGE, wire
from k2.exchanges.okx.parse import parse_frame, parse_push
from k2.exchanges.okx.symbols import OkxInstrument, parse_instruments, resolve_instruments
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS
from k2.transport.http import fetch_json
from k2.transport.ws import WsConnection, WsOptions

log = structlog.get_logger(__name__)

MAX_SYMBOLS_PER_CONNECTION = 300
_HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class OkxFeedOptions:
    """What to subscribe to, where, and how patiently."""

    symbols: tuple[str, ...]
    ws_url: str = wire.WS_URL
    rest_url: str = wire.REST_URL
    ping_idle_s: float = 20.0  # text ping after this long without a frame (OKX cuts at 30 s)
    liveness_timeout_s: float = 30.0  # nothing at all, not even the pong: a dead connection
    subscribe_timeout_s: float = 10.0
    silence_warning_s: float = 300.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    reference_timeout_s: float = 15.0
    reference_refresh_s: float | None = 300.0
    max_symbols_per_connection: int | None = None
    requests_per_hour: int = wire.REQUESTS_PER_HOUR
    max_frame_chars: int = DEFAULT_MAX_FRAME_CHARS
    book_depth: int = 400  # levels a side of the books channel's snapshot (a book feed's)
    last_trade_ids: Mapping[str, int] = field(default_factory=dict)  # instId → id, resume
    shard: Shard = WHOLE_EXCHANGE

    @property
    def protocol(self) -> Protocol_:
        return "okx-trades-all"


class RequestWindow:
    """Subscribe/unsubscribe requests of one connection in the last hour, against OKX's limit."""

    def __init__(self, limit: int, window_s: float = _HOUR_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._sent: deque[float] = deque()

    def wait_s(self, now: float) -> float:
        """Seconds until one more request is allowed (0: now)."""
        while self._sent and now - self._sent[0] >= self.window_s:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            return 0.0
        return self._sent[0] + self.window_s - now

    def spend(self, now: float) -> None:
        self._sent.append(now)


@dataclass(slots=True)
class _Session:
    """One connection's subscriptions."""

    conn: WsConnection
    pending: set[str]
    deadline: float
    requests: RequestWindow
    confirmed: bool = False
    ping_at: float = 0.0  # when the last text ping went out


def request_chunks(inst_ids: Sequence[str], limit: int = wire.MAX_REQUEST_BYTES) -> list[list[str]]:
    """``inst_ids`` in runs whose ``trades-all`` arguments stay within ``limit`` bytes, with
    room for the request's own envelope."""
    chunks: list[list[str]] = [[]]
    size = 64  # {"id":"..","op":"subscribe","args":[]}
    for inst_id in inst_ids:
        extra = wire.request_size(wire.ALL_TRADES, inst_id)
        if chunks[-1] and size + extra > limit:
            chunks.append([])
            size = 64
        chunks[-1].append(inst_id)
        size += extra
    return [chunk for chunk in chunks if chunk]


class OkxFeedClient(FeedClientBase):
    """OKX v5 public spot trades as :data:`~k2.exchanges.base.FeedEvent` s (a FeedClient)."""

    exchange = EXCHANGE
    channel: ClassVar[str] = wire.ALL_TRADES  # the channel a lane subscribes its symbols to
    max_symbols_per_connection = MAX_SYMBOLS_PER_CONNECTION
    # Connection attempts and subscribe requests share one budget: at most 1 + 2 in any second,
    # within OKX's 3 requests per second per IP.
    connect_rate_per_s = 2.0
    connect_burst = 1.0

    def __init__(
        self,
        options: OkxFeedOptions,
        on_silence: Callable[[Silence], None] | None = None,
        newest_id: NewestId | None = None,
    ) -> None:
        super().__init__(options, on_silence, newest_id)
        self.options: OkxFeedOptions = options
        self.protocol = options.protocol
        self._ids = itertools.count(1)

    async def reference_data(self) -> dict[str, OkxInstrument]:
        url = f"{self.options.rest_url.rstrip('/')}{wire.INSTRUMENTS_PATH}?instType=SPOT"
        return parse_instruments(await fetch_json(url, self.options.reference_timeout_s))

    resolve = staticmethod(resolve_instruments)

    def trading(self, listing: OkxInstrument) -> bool:
        return listing.state == "live"

    def native(self, listing: OkxInstrument) -> str:
        return listing.inst_id

    def lane_url(self, lane: Lane) -> str:
        return self.options.ws_url

    def ws_options(self) -> WsOptions:
        # OKX has no protocol-level ping ("okex does not support built-in ws protocol-level
        # ping-pong", as clients note); the text ping is sent by run_session.
        return WsOptions(liveness_timeout_s=self.options.liveness_timeout_s, ping_interval_s=None)

    def parse(self, text: str, envelope: Envelope) -> ParsedFrame:
        if len(text) <= self.options.max_frame_chars:  # the common push, one call less
            fast = parse_push(text, envelope)
            if fast is not None:
                return fast
        return parse_frame(text, envelope, self.options.max_frame_chars)

    def new_session(self, lane: Lane, conn: WsConnection) -> _Session:
        deadline = time.monotonic() + self.options.subscribe_timeout_s
        window = RequestWindow(self.options.requests_per_hour)
        return _Session(conn, set(lane.symbols), deadline, window)

    async def _request(self, session: _Session, op: str, inst_ids: Sequence[str]) -> None:
        """Subscribe or unsubscribe ``inst_ids`` in requests within OKX's limits."""
        for chunk in request_chunks(inst_ids):
            wait = session.requests.wait_s(time.monotonic())
            if wait > 0:
                log.warning("ws_request_limit_reached", exchange=EXCHANGE, wait_s=round(wait))
                await asyncio.sleep(wait)
            await self._connect_budget.acquire()
            session.requests.spend(time.monotonic())
            text = wire.request(op, self.channel, chunk, str(next(self._ids)))
            await session.conn.send_control(text)

    async def run_session(self, lane: Lane, conn: WsConnection) -> WsConnection | None:
        session: _Session = lane.session
        await self._request(session, "subscribe", lane.symbols)
        session.deadline = time.monotonic() + self.options.subscribe_timeout_s
        closed = asyncio.ensure_future(conn.wait_closed())
        tick = min(1.0, self.options.ping_idle_s / 4)
        try:
            while True:
                done, _ = await asyncio.wait({closed}, timeout=tick)
                if done:
                    closed.result()  # raises why the connection ended
                await self.on_tick(lane)
                now = time.monotonic()
                idle = conn.last_activity
                if now - idle >= self.options.ping_idle_s and session.ping_at <= idle:
                    session.ping_at = now  # one ping per quiet spell; its pong ends the spell
                    await conn.send_control(wire.PING)
                if session.pending and now > session.deadline:
                    missing = ", ".join(sorted(session.pending)[:10])
                    raise WsConnectionError(f"okx did not confirm the subscription to {missing}")
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
            session.pending.update(added)
            session.deadline = time.monotonic() + self.options.subscribe_timeout_s
            await self._request(session, "subscribe", added)

    def on_control(self, lane: Lane, control: Control) -> None:
        session: _Session = lane.session
        kind, symbol, detail = control.kind, control.symbol, control.detail
        conn_id = detail.get("connId")
        if isinstance(conn_id, str):
            lane.connection_id = conn_id
        if kind == ControlKind.SUBSCRIBED and detail.get("channel") == self.channel:
            self._confirmed(lane, session, symbol)
        elif kind == ControlKind.ERROR:
            message = str(detail.get("message", "no message"))
            if detail.get("code") == wire.UNKNOWN_INSTRUMENT:
                named = symbol or _symbol_in(message, lane.symbols) or "?"
                raise SubscriptionRejectedError(
                    f"okx refused the subscription to {named}: {message} (code 60018)"
                )
            self.warn_once(f"{detail.get('code')}: {message}")
        elif kind == ControlKind.SERVER_SHUTDOWN:
            log.warning("ws_server_notice_received", exchange=EXCHANGE, lane=lane.index,
                        code=detail.get("code"), message=detail.get("message"))  # fmt: skip

    def _confirmed(self, lane: Lane, session: _Session, symbol: str | None) -> None:
        if symbol is not None:
            session.pending.discard(symbol)
        log.debug("ws_symbol_subscribed", exchange=EXCHANGE, symbol=symbol)
        if not session.pending and not session.confirmed:
            session.confirmed = True
            log.info("ws_subscribed", exchange=EXCHANGE, lane=lane.index, symbols=len(lane.symbols))
            self.connected(lane)


def _symbol_in(message: str, symbols: Sequence[str]) -> str | None:
    """The subscribed instrument an error message names (``...,instId:BTC-XYZ doesn't...``)."""
    return next((symbol for symbol in symbols if f"instId:{symbol} " in message), None)
