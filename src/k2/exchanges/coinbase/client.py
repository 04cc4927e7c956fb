"""The Coinbase Advanced Trade feed client: ``market_trades``, kept open by ``heartbeats``.

Life of a feed: read the public products list and refuse unknown products before connecting
(``*``: every spot product online and trading; a ``-USDC`` product is read as its ``-USD``
twin, see :mod:`k2.exchanges.coinbase.symbols`); spread the products over connections of at
most :data:`PRODUCTS_PER_CONNECTION` (Coinbase documents no cap per subscription and asks
clients to spread subscriptions over several connections, docs.cloud.coinbase.com/
advanced-trade-api/docs/ws-best-practices); on each connection send two subscribe messages at
once, since one message carries one channel and a connection that sends none within 5 s is
closed: ``market_trades`` for its products and ``heartbeats``, without which "most channels
close within 60-90 seconds if no updates are sent". A connection is confirmed when the
``subscriptions`` answer lists every one of its products. Connections and messages are paced
for the whole client within Coinbase's strictest published limits (8 connections and 8
unauthenticated messages a second per IP address). Heartbeats arrive every second, so a
connection with no message within the liveness deadline is dead and replaced with backoff.

Gaps: ``trade_id`` is a per-product sequence (every recorded ``match`` of the Exchange feed,
which shares the engine and ids, follows its predecessor by one), checked per product as for
every exchange: replays (a subscribe snapshot) dropped, a jump reported as a
:class:`~k2.exchanges.base.Gap`. ``sequence_num`` counts the messages of one connection across
channels; a jump means messages of this connection were lost, trades of any of its products
among them, so the connection's quiet products have their newest id read from the history
(as after a reconnect) instead of waiting for their next trade to reveal the jump.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import structlog

from k2.errors import SubscriptionRejectedError, WsConnectionError
from k2.exchanges.base import Control, ControlKind, Envelope, ParsedFrame, Protocol_, Silence
from k2.exchanges.coinbase import EXCHANGE, wire
from k2.exchanges.coinbase.parse import parse_frame
from k2.exchanges.coinbase.symbols import CoinbaseProduct, parse_products, resolve_products
from k2.exchanges.contract import WHOLE_EXCHANGE, Shard
from k2.exchanges.feed import FeedClientBase, Lane, NewestId
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS
from k2.transport.http import fetch_json
from k2.transport.ws import TokenBucket, WsConnection, WsOptions

log = structlog.get_logger(__name__)

PROTOCOL: Protocol_ = "coinbase-advanced"
PRODUCTS_PER_CONNECTION = 100  # K2's own spread: Coinbase documents no cap per subscription
# Half of the 8 messages a second an IP may send: subscribes of several connections that open
# together, and a listing refresh, never come near the limit.
_MESSAGES_PER_S = wire.MESSAGES_PER_S / 2


@dataclass(frozen=True, slots=True)
class CoinbaseFeedOptions:
    """What to subscribe to, where, and how patiently."""

    symbols: tuple[str, ...]
    ws_url: str = wire.WS_URL
    rest_url: str = wire.REST_URL
    liveness_timeout_s: float = 10.0  # heartbeats come every second
    subscribe_timeout_s: float = 10.0
    silence_warning_s: float = 300.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    reference_timeout_s: float = 15.0
    reference_refresh_s: float | None = 300.0
    max_symbols_per_connection: int | None = None
    max_frame_chars: int = DEFAULT_MAX_FRAME_CHARS
    book_depth: int | None = None  # level2 sends the whole book (a book feed's)
    last_trade_ids: Mapping[str, int] = field(default_factory=dict)  # product → id, resume
    shard: Shard = WHOLE_EXCHANGE

    @property
    def protocol(self) -> Protocol_:
        return PROTOCOL


@dataclass(slots=True)
class _Session:
    """One connection's subscription and its message count."""

    lane: Lane
    conn: WsConnection
    deadline: float
    confirmed: bool = False
    next_sequence: int | None = None  # the sequence_num the next message should carry
    lost_messages: int = 0


class CoinbaseFeedClient(FeedClientBase):
    """Coinbase Advanced Trade public trades as :data:`~k2.exchanges.base.FeedEvent` s."""

    exchange = EXCHANGE
    protocol = PROTOCOL
    channel: ClassVar[str] = wire.MARKET_TRADES  # the channel a lane subscribes its products to
    max_symbols_per_connection = PRODUCTS_PER_CONNECTION
    connect_rate_per_s = 1.0  # far inside 8 connections a second per IP
    connect_burst = 4.0

    def __init__(
        self,
        options: CoinbaseFeedOptions,
        on_silence: Callable[[Silence], None] | None = None,
        newest_id: NewestId | None = None,
    ) -> None:
        super().__init__(options, on_silence, newest_id)
        self.options: CoinbaseFeedOptions = options
        self._messages = TokenBucket(_MESSAGES_PER_S, _MESSAGES_PER_S)
        self._sessions: dict[str, _Session] = {}  # connection id → its session

    async def reference_data(self) -> dict[str, CoinbaseProduct]:
        url = self.options.rest_url.rstrip("/") + wire.PRODUCTS_PATH + "?product_type=SPOT"
        return parse_products(await fetch_json(url, self.options.reference_timeout_s))

    resolve = staticmethod(resolve_products)

    def trading(self, listing: CoinbaseProduct) -> bool:
        return listing.trading

    def native(self, listing: CoinbaseProduct) -> str:
        return listing.native

    def lane_url(self, lane: Lane) -> str:
        return self.options.ws_url

    def ws_options(self) -> WsOptions:
        return WsOptions(liveness_timeout_s=self.options.liveness_timeout_s, ping_interval_s=None)

    def parse(self, text: str, envelope: Envelope) -> ParsedFrame:
        parsed = parse_frame(text, envelope, self.options.max_frame_chars)
        trades, controls = parsed[0], parsed[1]
        sequence = (
            trades[0][3].get("sequence_num")
            if trades
            else controls[0].detail.get("sequence_num")
            if controls
            else None
        )
        if isinstance(sequence, int):
            session = self._sessions.get(envelope.connection_id)
            if session is not None:
                self._count_message(session, sequence)
        return parsed

    def _count_message(self, session: _Session, sequence: int) -> None:
        """Check the connection's message count; a jump lost messages (trades among them)."""
        expected = session.next_sequence
        if expected is not None and sequence > expected:
            lost = sequence - expected
            first = session.lost_messages == 0
            session.lost_messages += lost
            (log.warning if first else log.debug)(
                "ws_messages_lost_detected",
                exchange=EXCHANGE,
                lane=session.lane.index,
                expected_sequence=expected,
                received_sequence=sequence,
                lost=lost,
            )
            self._check_quiet_products(session.lane)
        if expected is None or sequence >= expected:
            session.next_sequence = sequence + 1

    def _check_quiet_products(self, lane: Lane) -> None:
        """Read the newest id of the lane's products that stay quiet (see the module doc)."""
        if self._newest_id is None or (lane.history_check and not lane.history_check.done()):
            return
        known = {s: i for s in lane.symbols if (i := lane.tracker.last_seen(s)) is not None}
        loop = asyncio.get_running_loop()
        lane.history_check = loop.create_task(self._check_history(lane, known))

    def new_session(self, lane: Lane, conn: WsConnection) -> _Session:
        session = _Session(lane, conn, time.monotonic() + self.options.subscribe_timeout_s)
        self._sessions[conn.connection_id] = session
        return session

    async def _send(self, conn: WsConnection, text: str) -> None:
        await self._messages.acquire()
        await conn.send_control(text)

    async def run_session(self, lane: Lane, conn: WsConnection) -> WsConnection | None:
        session: _Session = lane.session
        closed = asyncio.ensure_future(conn.wait_closed())
        try:
            await self._send(conn, wire.subscribe(self.channel, lane.symbols))
            await self._send(conn, wire.subscribe(wire.HEARTBEATS, lane.symbols[:1]))
            while True:
                done, _ = await asyncio.wait({closed}, timeout=1.0)
                if done:
                    closed.result()  # raises why the connection ended
                await self.on_tick(lane)
                if not session.confirmed and time.monotonic() > session.deadline:
                    raise WsConnectionError(
                        f"coinbase did not confirm the {self.channel} subscription"
                    )
        finally:
            closed.cancel()
            self._sessions.pop(conn.connection_id, None)

    async def change_subscriptions(
        self, lane: Lane, added: Sequence[str], removed: Sequence[str]
    ) -> None:
        conn = lane.conn
        if conn is None:
            return
        if removed:
            await self._send(conn, wire.unsubscribe(self.channel, removed))
        if added:
            await self._send(conn, wire.subscribe(self.channel, added))

    def on_control(self, lane: Lane, control: Control) -> None:
        session = lane.session
        if not isinstance(session, _Session):
            return
        if control.kind == ControlKind.SUBSCRIBED:
            listed = str(control.detail.get(self.channel) or "").split(",")
            if not session.confirmed and set(lane.symbols) <= set(listed):
                session.confirmed = True
                log.info("ws_subscribed", exchange=EXCHANGE, lane=lane.index, products=len(listed))
                self.connected(lane)
        elif control.kind == ControlKind.ERROR:
            message = " ".join(str(v) for v in control.detail.values())
            if not session.confirmed:
                raise SubscriptionRejectedError(f"coinbase refused the subscription: {message}")
            self.warn_once(message)
