"""The Binance spot feed client: combined streams, ``@trade`` (default) or ``@aggTrade``.

Life of a feed: read ``exchangeInfo`` and refuse unknown symbols before connecting (Binance
itself accepts a well-formed stream of a nonexistent symbol silently and sends nothing; ``*``:
every symbol listed as ``TRADING``); spread the streams over connections of at most 1024 (the
exchange's limit), each opened with up to 100 streams in its ``/stream?streams=`` URL and the rest
subscribed with ``SUBSCRIBE`` requests of 200 streams, paced below the 5 messages a second a
connection may send; connection attempts stay within 300 per 5 minutes. Binance keeps a
connection alive with protocol pings, answered at once; no frame of any kind within the liveness
deadline means a dead connection, replaced with backoff (see :mod:`k2.exchanges.feed`). A
stream that has sent nothing for a while is a WARNING and a callback, not a reconnect.

Rollover without a gap: Binance closes every connection at 24 h and may announce
``serverShutdown`` earlier. Before the configured maximum age, or on ``serverShutdown``, the
client opens a second connection for the same streams, which holds what it receives, keeps
reading the old one for ``overlap_s`` more seconds, closes it, and then continues with the new
one: trades both sent are recognised by their per-symbol ids and dropped, so nothing is missed or
delivered twice. After an unplanned reconnect the first id per symbol is compared with the last
one seen and the jump, if any, is reported as a :class:`~k2.exchanges.base.Gap`
(``detected_by="reconnect"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from k2.errors import WsConnectionError
from k2.exchanges.base import Control, ControlKind, Envelope, ParsedFrame, Protocol_, Silence
from k2.exchanges.binance import EXCHANGE, wire
from k2.exchanges.binance.fastparse import parse_trade
from k2.exchanges.binance.parse import parse_frame
from k2.exchanges.binance.symbols import (
    BinanceSymbol,
    asset_map,
    parse_exchange_info,
    resolve_symbols,
)
from k2.exchanges.contract import WHOLE_EXCHANGE, Shard
from k2.exchanges.feed import FeedClientBase, Lane, NewestId
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS
from k2.transport.http import fetch_json
from k2.transport.ws import WsConnection, WsOptions

log = structlog.get_logger(__name__)

_URL_STREAMS = 100  # streams named in the connect URL; the rest are SUBSCRIBEd
_SUBSCRIBE_BATCH = 200  # streams per SUBSCRIBE request


@dataclass(frozen=True, slots=True)
class BinanceFeedOptions:
    """What to subscribe to, where, and how patiently."""

    symbols: tuple[str, ...]
    stream: wire.StreamKind = "trade"
    time_unit: wire.TimeUnit = "MILLISECOND"
    ws_url: str = wire.WS_URL
    rest_url: str = wire.REST_URL
    liveness_timeout_s: float = 60.0  # Binance pings every 20 s, so this is 3 missed pings
    liveness_data_only: bool = False
    first_trade_timeout_s: float = 60.0  # a stream silent since subscription: unknown symbol?
    silence_warning_s: float = 300.0
    max_connection_age_s: float = 23 * 3600.0  # Binance closes connections at 24 h
    overlap_s: float = 3.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    reference_timeout_s: float = 30.0
    reference_refresh_s: float | None = 300.0
    max_symbols_per_connection: int | None = None
    max_frame_chars: int = DEFAULT_MAX_FRAME_CHARS
    book_depth: int = 1000  # levels a side of a book feed's REST snapshots
    last_trade_ids: Mapping[str, int] = field(default_factory=dict)  # native symbol → id
    shard: Shard = WHOLE_EXCHANGE

    @property
    def protocol(self) -> Protocol_:
        return "binance-trade" if self.stream == "trade" else "binance-aggtrade"


@dataclass(slots=True)
class _Session:
    """One connection's state: a pending rollover."""

    conn: WsConnection
    shutdown: bool = False


class BinanceFeedClient(FeedClientBase):
    """Binance spot public trades as :data:`~k2.exchanges.base.FeedEvent` s (a FeedClient)."""

    exchange = EXCHANGE
    max_symbols_per_connection = wire.MAX_STREAMS_PER_CONNECTION
    connect_rate_per_s = 0.5  # Binance allows 300 connection attempts per 5 minutes per IP
    connect_burst = 20.0

    def __init__(
        self,
        options: BinanceFeedOptions,
        on_silence: Callable[[Silence], None] | None = None,
        newest_id: NewestId | None = None,
    ) -> None:
        normalised = {symbol.upper(): last for symbol, last in options.last_trade_ids.items()}
        super().__init__(options, on_silence, newest_id)
        self.options: BinanceFeedOptions = options
        self._last_ids = normalised
        self.protocol = options.protocol
        self.assets: dict[str, tuple[str, str]] = {}  # native → (base, quote), for normalise
        self._ids = itertools.count(1)
        self._subscribed: set[str] = set()  # connections whose URL-less streams are subscribed

    @property
    def url(self) -> str:
        """The connect URL of the first connection."""
        lane = self.lanes[0] if self.lanes else None
        symbols = lane.symbols if lane is not None else self._natives
        return self._url(symbols)

    def streams(self, symbols: Sequence[str]) -> list[str]:
        """The streams of ``symbols`` this feed subscribes."""
        return [wire.stream_name(symbol, self.options.stream) for symbol in symbols]

    def _url(self, symbols: Sequence[str]) -> str:
        streams = self.streams(symbols)
        unit: wire.TimeUnit | None = None  # ms is the documented default: the URL omits it
        if self.options.time_unit == "MICROSECOND":
            unit = "MICROSECOND"
        return wire.combined_stream_url(self.options.ws_url, streams[:_URL_STREAMS], unit)

    async def reference_data(self) -> dict[str, BinanceSymbol]:
        """The listed symbols; their assets are kept for normalisation."""
        url = self.options.rest_url.rstrip("/") + wire.EXCHANGE_INFO_PATH
        listed = parse_exchange_info(await fetch_json(url, self.options.reference_timeout_s))
        self.assets.update(asset_map(listed.values()))
        return listed

    resolve = staticmethod(resolve_symbols)

    def trading(self, listing: BinanceSymbol) -> bool:
        return listing.status == "TRADING"

    def native(self, listing: BinanceSymbol) -> str:
        return listing.symbol

    def _add_lane(self, symbols: list[str]) -> Lane:
        lane = super()._add_lane(symbols)
        for symbol in symbols:
            if symbol in self._last_ids:
                lane.tracker.seed(symbol, self._last_ids[symbol])
        return lane

    def lane_url(self, lane: Lane) -> str:
        return self._url(lane.symbols)

    def ws_options(self) -> WsOptions:
        return WsOptions(
            liveness_timeout_s=self.options.liveness_timeout_s,
            liveness_data_only=self.options.liveness_data_only,
            ping_interval_s=None,  # Binance pings us; our pings would count against 5 msg/s
        )

    def parse(self, text: str, envelope: Envelope) -> ParsedFrame:
        if len(text) <= self.options.max_frame_chars:  # the common trade frame, one call less
            fast = parse_trade(text, envelope)
            if fast is not None:
                return fast
        return parse_frame(text, envelope, self.options.max_frame_chars)

    def new_session(self, lane: Lane, conn: WsConnection) -> _Session:
        return _Session(conn)

    async def _subscribe_rest(self, conn: WsConnection, symbols: Sequence[str]) -> None:
        """SUBSCRIBE the streams the connect URL did not name (once per connection)."""
        if conn.connection_id not in self._subscribed:
            self._subscribed.add(conn.connection_id)
            await self._request(conn, "SUBSCRIBE", symbols[_URL_STREAMS:])

    async def _request(self, conn: WsConnection, method: str, symbols: Sequence[str]) -> None:
        streams = self.streams(symbols)
        render = wire.subscribe if method == "SUBSCRIBE" else wire.unsubscribe
        for start in range(0, len(streams), _SUBSCRIBE_BATCH):
            chunk = streams[start : start + _SUBSCRIBE_BATCH]
            await conn.send_control(render(chunk, next(self._ids)))

    async def run_session(self, lane: Lane, conn: WsConnection) -> WsConnection | None:
        await self._subscribe_rest(conn, lane.symbols)
        log.info("ws_subscribed", exchange=EXCHANGE, lane=lane.index, streams=len(lane.symbols))
        self.connected(lane)
        session: _Session = lane.session
        closed = asyncio.ensure_future(conn.wait_closed())
        successor: asyncio.Task[WsConnection] | None = None
        try:
            while True:
                done, _ = await asyncio.wait({closed}, timeout=min(1.0, self.options.overlap_s))
                if done:
                    closed.result()  # raises why the connection ended
                await self.on_tick(lane)
                if successor is None:
                    reason = self._rollover_due(session, conn)
                    if reason is not None:
                        log.info("ws_rollover_started", exchange=EXCHANGE, reason=reason)
                        successor = asyncio.create_task(self._open_successor(lane))
                elif successor.done():
                    if successor.cancelled() or successor.exception() is not None:
                        error = "cancelled" if successor.cancelled() else successor.exception()
                        log.warning("ws_rollover_failed", exchange=EXCHANGE, reason=str(error))
                        successor = None
                    elif successor.result().age_s >= self.options.overlap_s:
                        return successor.result()
        except WsConnectionError:
            if _opened(successor):
                log.info("ws_rollover_completed", exchange=EXCHANGE, reason="closed early")
                return successor.result()  # type: ignore[union-attr]
            raise
        finally:
            closed.cancel()
            self._subscribed.discard(conn.connection_id)
            if successor is not None and not successor.done():
                successor.cancel()
                with contextlib.suppress(asyncio.CancelledError, WsConnectionError):
                    await successor

    def _rollover_due(self, session: _Session, conn: WsConnection) -> str | None:
        if session.shutdown:
            return "server_shutdown"
        if conn.age_s >= self.options.max_connection_age_s:
            return "max_connection_age"
        return None

    async def _open_successor(self, lane: Lane) -> WsConnection:
        conn = await self.open_connection(lane)
        await self._subscribe_rest(conn, lane.symbols)
        return conn

    async def change_subscriptions(
        self, lane: Lane, added: Sequence[str], removed: Sequence[str]
    ) -> None:
        conn = lane.conn
        if conn is None:
            return
        if removed:
            await self._request(conn, "UNSUBSCRIBE", removed)
        if added:
            await self._request(conn, "SUBSCRIBE", added)

    def on_control(self, lane: Lane, control: Control) -> None:
        if control.kind == ControlKind.SERVER_SHUTDOWN:
            log.warning("ws_server_shutdown_received", exchange=EXCHANGE, lane=lane.index)
            if isinstance(lane.session, _Session):
                lane.session.shutdown = True
        elif control.kind == ControlKind.ERROR:
            self.warn_once(str(control.detail.get("message")))


def _opened(task: asyncio.Task[WsConnection] | None) -> bool:
    """Whether a successor connection finished opening."""
    return task is not None and task.done() and not task.cancelled() and not task.exception()
