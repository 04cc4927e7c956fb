"""The Binance spot feed client: combined streams, ``@trade`` (default) or ``@aggTrade``.

Life of a feed: read ``exchangeInfo`` and refuse unknown symbols before connecting (Binance
itself accepts a well-formed stream of a nonexistent symbol silently and sends nothing); connect
to ``/stream?streams=a@trade/b@trade`` (the URL is the subscription); yield every trade, gap,
malformed frame and control message. Binance keeps the connection alive with protocol pings that
the WebSocket library answers; no frame of any kind within the liveness deadline means a dead
connection, replaced with capped, fully jittered exponential backoff. A stream that has sent
nothing for a while is a WARNING and a callback, not a reconnect.

Rollover without a gap: Binance closes every connection at 24 h and may announce
``serverShutdown`` earlier. Before the configured maximum age, or on ``serverShutdown``, the
client opens a second connection, buffers what it receives, keeps reading the old one for
``overlap_s`` more seconds, closes it, and then continues with the new one: trades both sent are
recognised by their per-symbol ids and dropped, so nothing is missed or delivered twice. After an
unplanned reconnect the first id per symbol is compared with the last one seen and the jump, if
any, is reported as a :class:`~k2.exchanges.base.Gap` (``detected_by="reconnect"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import structlog

from k2.errors import ExchangeError, WsConnectionError
from k2.exchanges.base import (
    Control,
    ControlKind,
    Envelope,
    FeedEvent,
    FeedStats,
    Gap,
    Protocol_,
    SequenceTracker,
    Silence,
    SilenceMonitor,
)
from k2.exchanges.binance import EXCHANGE, wire
from k2.exchanges.binance.parse import DEFAULT_MAX_FRAME_CHARS, parse_frame
from k2.exchanges.binance.symbols import (
    BinanceSymbol,
    asset_map,
    parse_exchange_info,
)
from k2.exchanges.binance.symbols import resolve_symbols as resolve
from k2.transport.http import fetch_json
from k2.transport.ws import Backoff, WsConnection, WsOptions

log = structlog.get_logger(__name__)

_Item = tuple[str, Envelope] | WsConnectionError
_BUFFER_FRAMES = 100_000  # frames a successor connection may buffer during the overlap


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
    max_frame_chars: int = DEFAULT_MAX_FRAME_CHARS
    last_trade_ids: Mapping[str, int] = field(default_factory=dict)  # native symbol → id

    @property
    def protocol(self) -> Protocol_:
        return "binance-trade" if self.stream == "trade" else "binance-aggtrade"


@dataclass(slots=True)
class _Link:
    """One connection; a successor buffers its frames in ``queue`` until it is promoted."""

    conn: WsConnection
    queue: asyncio.Queue[_Item] | None = None
    reader: asyncio.Task[None] | None = None


class BinanceFeedClient:
    """Binance spot public trades as :data:`~k2.exchanges.base.FeedEvent` s (a FeedClient)."""

    exchange = EXCHANGE

    def __init__(
        self, options: BinanceFeedOptions, on_silence: Callable[[Silence], None] | None = None
    ) -> None:
        self.options = options
        self.stats = FeedStats()
        self.assets: dict[str, tuple[str, str]] = {}  # native → (base, quote), for normalise
        self._on_silence = on_silence
        self._tracker = SequenceTracker(EXCHANGE)
        for symbol, last_id in options.last_trade_ids.items():
            self._tracker.seed(symbol.upper(), last_id)
        self._silence = SilenceMonitor(options.silence_warning_s, options.first_trade_timeout_s)
        self._natives: list[str] = []
        self._warned: set[str] = set()
        self._gap_warned: set[str] = set()
        self._current: _Link | None = None
        self._opened = 0
        self._successor: asyncio.Task[_Link] | None = None
        self._closing = asyncio.Event()
        self._ws_options = WsOptions(
            liveness_timeout_s=options.liveness_timeout_s,
            liveness_data_only=options.liveness_data_only,
            ping_interval_s=None,  # Binance pings us; our pings would count against 5 msg/s
        )

    @property
    def url(self) -> str:
        streams = [wire.stream_name(symbol, self.options.stream) for symbol in self._natives]
        unit: wire.TimeUnit | None = None  # ms is the documented default: the URL omits it
        if self.options.time_unit == "MICROSECOND":
            unit = "MICROSECOND"
        return wire.combined_stream_url(self.options.ws_url, streams, unit)

    async def load_reference(self) -> list[BinanceSymbol]:
        """The configured symbols from ``exchangeInfo``; raises UnknownSymbolError for the
        first symbol Binance does not list."""
        url = self.options.rest_url.rstrip("/") + wire.EXCHANGE_INFO_PATH
        payload = await fetch_json(url, self.options.reference_timeout_s)
        symbols = resolve(self.options.symbols, parse_exchange_info(payload))
        if len(symbols) > wire.MAX_STREAMS_PER_CONNECTION:
            raise ExchangeError(f"binance allows {wire.MAX_STREAMS_PER_CONNECTION} streams")
        self._natives = list(dict.fromkeys(entry.symbol for entry in symbols))
        self.assets = asset_map(symbols)
        return symbols

    async def close(self) -> None:
        """Stop: the event stream ends after the current frame; connections are closed."""
        self._closing.set()
        if self._current is not None:
            await self._current.conn.close()

    async def events(self) -> AsyncIterator[FeedEvent]:
        """Connect, subscribe and yield events until :meth:`close`; reconnects on its own."""
        await self.load_reference()
        self._silence.watch(self._natives)
        backoff = Backoff(self.options.backoff_base_s, self.options.backoff_cap_s)
        housekeeping = asyncio.create_task(self._housekeeping())
        link: _Link | None = None
        try:
            while not self._closing.is_set():
                if link is None:
                    link = await self._connect(backoff)
                    if link is None:
                        break
                    yield self._connected(link)
                self._current = link
                try:
                    async with contextlib.aclosing(self._read(link, backoff)) as frames:
                        async for event in frames:
                            yield event
                except WsConnectionError as exc:
                    await link.conn.close()
                    link = await self._claim_successor()
                    if self._closing.is_set():
                        break
                    if link is None:
                        yield Control(ControlKind.DISCONNECTED, None, {"reason": str(exc)})
                        await self._pause(backoff, str(exc))
                        continue
                    self._count_new_connection()
                    log.info("ws_rollover_completed", exchange=EXCHANGE, reason=str(exc))
                    yield self._connected(link)
        finally:
            await self._shutdown(housekeeping, link)

    def _connected(self, link: _Link) -> Control:
        return Control(ControlKind.CONNECTED, None, {"connection_id": link.conn.connection_id})

    def _count_new_connection(self) -> None:
        self._tracker.mark_reconnect()
        self.stats.reconnects += 1

    async def _connect(self, backoff: Backoff) -> _Link | None:
        while not self._closing.is_set():
            try:
                conn = await WsConnection.open(self.url, self._ws_options)
            except WsConnectionError as exc:
                await self._pause(backoff, str(exc))
                continue
            if self._closing.is_set():  # close() came while connecting
                await conn.close()
                return None
            if self._opened:
                self._count_new_connection()
            self._opened += 1
            log.info("ws_subscribed", exchange=EXCHANGE, streams=len(self._natives))
            return _Link(conn)
        return None

    async def _pause(self, backoff: Backoff, reason: str) -> None:
        delay = backoff.next_delay()
        log.warning(
            "ws_reconnect_scheduled",
            exchange=EXCHANGE,
            delay_s=round(delay, 3),
            attempt=backoff.attempt,
            reason=reason,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=delay)

    async def _shutdown(self, housekeeping: asyncio.Task[None], link: _Link | None) -> None:
        housekeeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await housekeeping
        task, self._successor = self._successor, None
        successor = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WsConnectionError):
                successor = await task
        for leftover in (successor, link):
            if leftover is not None:
                await self._stop_reader(leftover)
                await leftover.conn.close()
        self._current = None

    def _envelope(self, conn: WsConnection) -> Envelope:
        return Envelope(
            received_us=time.time_ns() // 1000,
            connection_id=conn.connection_id,
            position=conn.frames_received - 1,
            protocol=self.options.protocol,
        )

    async def _read(self, link: _Link, backoff: Backoff) -> AsyncGenerator[FeedEvent, None]:
        """Events of ``link``: first what it buffered as a successor, then live frames."""
        queue = link.queue
        if queue is not None:
            await self._stop_reader(link)
            link.queue = None
            while not queue.empty():
                item = queue.get_nowait()
                if isinstance(item, WsConnectionError):
                    raise item
                for event in self._handle(*item):
                    yield event
        healthy = False
        while True:
            text = await link.conn.recv()
            for event in self._handle(text, self._envelope(link.conn)):
                yield event
            if not healthy:
                healthy = True
                backoff.reset()

    async def _stop_reader(self, link: _Link) -> None:
        if link.reader is not None:
            link.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await link.reader
            link.reader = None

    # --- rollover -------------------------------------------------------------------------

    def _start_successor(self, reason: str) -> None:
        if self._successor is None and not self._closing.is_set():
            log.info("ws_rollover_started", exchange=EXCHANGE, reason=reason)
            self._successor = asyncio.create_task(self._open_successor())

    async def _open_successor(self) -> _Link:
        conn = await WsConnection.open(self.url, self._ws_options)
        link = _Link(conn, asyncio.Queue(maxsize=_BUFFER_FRAMES))
        link.reader = asyncio.create_task(self._buffer(link))
        return link

    async def _buffer(self, link: _Link) -> None:
        assert link.queue is not None  # set by _open_successor
        try:
            while True:
                text = await link.conn.recv()
                await link.queue.put((text, self._envelope(link.conn)))
        except WsConnectionError as exc:
            await link.queue.put(exc)

    async def _claim_successor(self) -> _Link | None:
        """The successor connection if one was opened (waiting for it if still opening)."""
        task, self._successor = self._successor, None
        if task is None:
            return None
        try:
            return await task
        except WsConnectionError as exc:
            log.warning("ws_rollover_failed", exchange=EXCHANGE, reason=str(exc))
            return None

    async def _housekeeping(self) -> None:
        """Once a second: silence checks, and the rollover schedule."""
        while True:
            await asyncio.sleep(min(1.0, self.options.overlap_s))
            for silence in self._silence.due():
                self._report_silence(silence)
            current, successor = self._current, self._successor
            if current is None:
                continue
            if successor is None and current.conn.age_s >= self.options.max_connection_age_s:
                self._start_successor("max_connection_age")
            elif successor is not None and successor.done():
                if successor.cancelled() or successor.exception() is not None:
                    await self._claim_successor()  # logged; retried on the next tick
                elif successor.result().conn.age_s >= self.options.overlap_s:
                    await current.conn.close()  # the reader sees the end and promotes it

    def _report_silence(self, silence: Silence) -> None:
        self.stats.silences += 1
        event = "feed_silence_detected" if silence.ever_seen else "feed_stream_empty_detected"
        log.warning(
            event,
            exchange=EXCHANGE,
            symbol=silence.key,
            silent_s=round(silence.silent_s, 1),
            hint=None if silence.ever_seen else "binance accepts unknown streams silently",
        )
        if self._on_silence is not None:
            self._on_silence(silence)

    # --- frames ---------------------------------------------------------------------------

    def _handle(self, text: str, envelope: Envelope) -> list[FeedEvent]:
        self.stats.frames += 1
        parsed = parse_frame(text, envelope, self.options.max_frame_chars)
        events: list[FeedEvent] = []
        if parsed.malformed is not None:
            self.stats.malformed += 1
            level = log.warning if self.stats.malformed == 1 else log.debug
            level("feed_malformed_frame_received", exchange=EXCHANGE, error=parsed.malformed.error)
            events.append(parsed.malformed)
        if parsed.unknown_kind is not None:
            self._note_unknown(parsed.unknown_kind)
        for control in parsed.controls:
            self._on_control(control)
            events.append(control)
        for trade in parsed.trades:
            if trade.trade_key is not None:
                verdict = self._tracker.observe(trade.native_symbol, trade.trade_key)
                if verdict.duplicate:
                    self.stats.duplicates_dropped += 1
                    continue
                if verdict.gap is not None:
                    self.stats.gaps += 1
                    self._log_gap(verdict.gap)
                    events.append(verdict.gap)
            self._silence.seen(trade.native_symbol)
            self.stats.trades += 1
            events.append(trade)
        return events

    def _log_gap(self, gap: Gap) -> None:
        """WARNING for reconnect gaps and a symbol's first sequence gap, DEBUG after that."""
        first = gap.native_symbol not in self._gap_warned
        self._gap_warned.add(gap.native_symbol)
        level = log.warning if first or gap.detected_by == "reconnect" else log.debug
        level(
            "feed_gap_detected",
            exchange=EXCHANGE,
            symbol=gap.native_symbol,
            first_missing=gap.first_missing,
            last_missing=gap.last_missing,
            detected_by=gap.detected_by,
        )

    def _note_unknown(self, kind: str) -> None:
        count = self.stats.unknown_kinds.get(kind, 0) + 1
        self.stats.unknown_kinds[kind] = count
        if count == 1:
            log.warning("feed_unknown_message_kind", exchange=EXCHANGE, kind=kind)

    def _on_control(self, control: Control) -> None:
        if control.kind == ControlKind.SERVER_SHUTDOWN:
            log.warning("ws_server_shutdown_received", exchange=EXCHANGE)
            self._start_successor("server_shutdown")
        elif control.kind == ControlKind.ERROR:
            message = str(control.detail.get("message"))
            if message not in self._warned:
                self._warned.add(message)
                log.warning("feed_error_received", exchange=EXCHANGE, message=message)
