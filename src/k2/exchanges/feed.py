"""The one feed-client base every exchange builds on: connections, reconnects, ids, warn-once logs.

A feed spreads its symbols over as many WebSocket connections (*lanes*) as the exchange's limits
require. Each lane reconnects on its own, with capped, fully jittered exponential backoff and a
exchange-wide budget of connection attempts, and keeps its own per-symbol id sequence, so a
reconnect of one lane reports gaps only for that lane's symbols. Frames are handled as the socket
delivers them: parsed, checked against the id sequence (replays dropped, jumps reported as
:class:`~k2.exchanges.base.Gap`), and handed as one list per frame to a :class:`FeedSink`. A sink
that cannot take more pauses every lane's socket until it is ready again.

With ``*`` as symbols the reference data is re-read every ``reference_refresh_s``: new listings
are subscribed (on a lane with room, else a new lane) and delisted symbols dropped, both logged
at INFO.

An exchange writes only its reference data (how to read and resolve its listings) and its
session logic: the URL of a lane, what to send after connecting, how to
read its controls, and (un)subscribe requests for symbols that change while a lane is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import structlog

from k2.errors import WsConnectionError
from k2.exchanges.base import (
    Control,
    ControlKind,
    Envelope,
    FeedEvent,
    FeedStats,
    FieldValue,
    Gap,
    Malformed,
    ParsedFrame,
    Protocol_,
    RawTrade,
    SequenceTracker,
    Silence,
    SilenceMonitor,
)
from k2.exchanges.contract import ALL_SYMBOLS, owned
from k2.transport.ws import Backoff, TokenBucket, WsConnection, WsOptions

log = structlog.get_logger(__name__)

_QUEUE_EVENTS = 10_000  # frames events() holds for a slow reader


class FeedSink(Protocol):
    """Where a feed delivers its events: one call per received frame, in arrival order."""

    def accept(self, events: list[FeedEvent]) -> bool:
        """Take the events of one frame; False asks the feed to stop reading until
        :meth:`ready` returns (the events given are taken either way)."""
        ...

    async def ready(self) -> None:
        """Return once the sink takes events again."""
        ...


class _QueueSink:
    """A bounded queue of frames' events, for :meth:`FeedClientBase.events`."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[FeedEvent]] = asyncio.Queue()
        self._room = asyncio.Event()
        self._room.set()

    def accept(self, events: list[FeedEvent]) -> bool:
        if events:
            self.queue.put_nowait(events)
        full = self.queue.qsize() >= _QUEUE_EVENTS
        if full:
            self._room.clear()
        return not full

    async def ready(self) -> None:
        await self._room.wait()

    def taken(self) -> None:
        if self.queue.qsize() < _QUEUE_EVENTS // 2:
            self._room.set()


NewestId = Callable[[str], Awaitable[int | None]]


@dataclass(eq=False)
class Lane:
    """One connection's share of the symbols, and what it keeps across its reconnects."""

    index: int
    symbols: list[str]
    tracker: SequenceTracker
    backoff: Backoff
    connections: int = 0
    conn: WsConnection | None = None
    # The connection id its trades carry: the client's own, until the exchange names its own.
    connection_id: str = ""
    session: Any = None  # the exchange's per-connection state, while connected
    task: asyncio.Task[None] | None = None
    connected: bool = False
    history_check: asyncio.Task[None] | None = None


class FeedClientBase:
    """Shared machinery of every exchange's feed client (implements ``FeedClient``)."""

    exchange: ClassVar[str]
    protocol: Protocol_
    # How a lane reads its symbols' trade ids (an exchange whose ids are not per-symbol sequences
    # says so with its own tracker).
    tracker_type: ClassVar[type[SequenceTracker]] = SequenceTracker
    max_symbols_per_connection: ClassVar[int] = 1024
    # Connection attempts per second (and burst) for the whole exchange, well inside its limits.
    connect_rate_per_s: ClassVar[float] = 1.0
    connect_burst: ClassVar[float] = 10.0

    # A symbol still quiet this long after its lane (re)connected has its newest id read from
    # the exchange's history, at most this many symbols per connect (one REST request each).
    history_check_s: ClassVar[float] = 10.0
    history_check_max: ClassVar[int] = 100

    def __init__(
        self,
        options: Any,
        on_silence: Callable[[Silence], None] | None,
        newest_id: NewestId | None = None,
    ) -> None:
        self.options = options
        self._newest_id = newest_id
        self.stats = FeedStats()
        self._on_silence = on_silence
        self._silence = SilenceMonitor(
            options.silence_warning_s, getattr(options, "first_trade_timeout_s", None)
        )
        self._closing = asyncio.Event()
        self._lanes: list[Lane] = []
        self._natives: list[str] = []
        self._sink: FeedSink | None = None
        self._paused = False
        self._failure: BaseException | None = None
        self._connect_budget = TokenBucket(self.connect_rate_per_s, self.connect_burst)
        self._warned: set[str] = set()
        self._gap_warned: set[str] = set()

    # --- what an exchange implements ------------------------------------------------------------

    async def reference_data(self) -> Mapping[str, Any]:
        """Every symbol the exchange lists, keyed by native name, read from its REST reference
        data (each value the exchange's own listing record)."""
        raise NotImplementedError

    def resolve(
        self, requested: Sequence[str], listed: Mapping[str, Any], strict: bool
    ) -> list[Any]:
        """The listings ``requested`` names, in order; with ``strict`` an unknown name raises
        UnknownSymbolError, without it the name is left out."""
        raise NotImplementedError

    def trading(self, listing: Any) -> bool:
        """Whether a listing trades now (a symbol that does not is never subscribed)."""
        raise NotImplementedError

    def native(self, listing: Any) -> str:
        """The name this feed's protocol uses on the wire for a listing."""
        raise NotImplementedError

    def lane_url(self, lane: Lane) -> str:
        raise NotImplementedError

    def ws_options(self) -> WsOptions:
        raise NotImplementedError

    def new_session(self, lane: Lane, conn: WsConnection) -> Any:
        """The exchange's state for one connection of ``lane``."""
        return None

    async def run_session(self, lane: Lane, conn: WsConnection) -> WsConnection | None:
        """Subscribe and serve ``conn`` until it ends (raising why), or return the successor
        connection it rolled over to."""
        await conn.wait_closed()
        return None

    def parse(self, text: str, envelope: Envelope) -> ParsedFrame:
        raise NotImplementedError

    def on_control(self, lane: Lane, control: Control) -> None:
        """Act on a control frame (acks, errors, shutdown notices)."""

    async def change_subscriptions(
        self, lane: Lane, added: Sequence[str], removed: Sequence[str]
    ) -> None:
        """Subscribe ``added`` and unsubscribe ``removed`` on the lane's open connection."""

    # --- the client's life ------------------------------------------------------------------

    async def load_reference(self) -> list[Any]:
        """The configured symbols' listings; raises UnknownSymbolError for the first symbol the
        exchange does not list."""
        return self.resolve(self.options.symbols, await self.reference_data(), True)

    async def list_symbols(self, requested: Sequence[str], strict: bool = True) -> list[str]:
        """The native symbols ``requested`` names (every trading one for ``*``) that this feed's
        shard owns, from the exchange's reference data; raises UnknownSymbolError for a name the
        exchange lacks. Without ``strict`` (a refresh), names the exchange no longer lists or trades
        are left out."""
        listed = await self.reference_data()
        if ALL_SYMBOLS in requested:
            chosen = [listing for listing in listed.values() if self.trading(listing)]
        else:
            chosen = self.resolve(requested, listed, strict)
            if not strict:
                chosen = [listing for listing in chosen if self.trading(listing)]
        return owned([self.native(listing) for listing in chosen], self.options.shard)

    @property
    def natives(self) -> list[str]:
        """The native symbols the feed subscribes to now."""
        return list(self._natives)

    @property
    def lanes(self) -> list[Lane]:
        return list(self._lanes)

    def connections_open(self) -> int:
        return sum(1 for lane in self._lanes if lane.connected)

    def capacity(self) -> int:
        configured = getattr(self.options, "max_symbols_per_connection", None)
        return configured or self.max_symbols_per_connection

    async def run(self, sink: FeedSink, natives: Sequence[str] | None = None) -> None:
        """Read every lane into ``sink`` until :meth:`close`; raises what stopped a lane for
        good (a rejected subscription, an unknown symbol). ``natives`` skips the first read of
        the reference data when the caller already resolved the symbols."""
        self._sink = sink
        if natives is None:
            natives = await self.list_symbols(self.options.symbols)
        self._natives = list(dict.fromkeys(natives))
        self._silence.watch(self._natives)
        size = self.capacity()
        for start in range(0, len(self._natives), size):
            self._add_lane(self._natives[start : start + size])
        housekeeping = asyncio.create_task(self._housekeeping())
        try:
            await self._closing.wait()
        finally:
            housekeeping.cancel()
            tasks = [
                task
                for lane in self._lanes
                for task in (lane.task, lane.history_check)
                if task is not None
            ]
            for task in [housekeeping, *tasks]:
                task.cancel()
            await asyncio.gather(housekeeping, *tasks, return_exceptions=True)
            for lane in self._lanes:
                if lane.conn is not None:
                    await lane.conn.close()
        if self._failure is not None:
            raise self._failure

    async def events(self) -> AsyncIterator[FeedEvent]:
        """Connect, subscribe and yield events until :meth:`close`; reconnects on its own."""
        sink = _QueueSink()
        runner = asyncio.create_task(self.run(sink))
        try:
            while True:
                getter = asyncio.ensure_future(sink.queue.get())
                await asyncio.wait({getter, runner}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                sink.taken()
                for event in getter.result():
                    yield event
        finally:
            await self.close()
            with contextlib.suppress(asyncio.CancelledError):
                await runner  # re-raises the failure that stopped the feed

    async def close(self) -> None:
        """Stop: every lane's connection is closed; the event stream ends."""
        self._closing.set()

    def _add_lane(self, symbols: list[str]) -> Lane:
        tracker = self.tracker_type(self.exchange)
        last_ids: Mapping[str, int] = self.options.last_trade_ids
        for symbol in symbols:
            if symbol in last_ids:
                tracker.seed(symbol, last_ids[symbol])
        backoff = Backoff(self.options.backoff_base_s, self.options.backoff_cap_s)
        lane = Lane(len(self._lanes), symbols, tracker, backoff)
        self._lanes.append(lane)
        lane.task = asyncio.create_task(self._lane_loop(lane), name=f"{self.exchange}-lane")
        return lane

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        self._closing.set()

    async def _lane_loop(self, lane: Lane) -> None:
        try:
            await self._serve_lane(lane)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a lane's failure ends the feed, which raises it
            self._fail(exc)

    async def _serve_lane(self, lane: Lane) -> None:
        conn: WsConnection | None = None
        while not self._closing.is_set():
            if conn is None:
                conn = await self._connect(lane)
                if conn is None:
                    return
            self._attach(lane, conn)
            try:
                successor = await self.run_session(lane, conn)
            except WsConnectionError as exc:
                await conn.close()
                self._disconnected(lane, str(exc))
                conn = None
                if not self._closing.is_set():
                    await self._pause(lane, str(exc))
                continue
            await conn.close()
            conn = successor
            if conn is not None:
                self._count_connection(lane)
                log.info("ws_rollover_completed", exchange=self.exchange, lane=lane.index)

    async def _connect(self, lane: Lane) -> WsConnection | None:
        while not self._closing.is_set():
            await self._connect_budget.acquire()
            try:
                conn = await self.open_connection(lane)
            except WsConnectionError as exc:
                await self._pause(lane, str(exc))
                continue
            if self._closing.is_set():
                await conn.close()
                return None
            self._count_connection(lane)
            return conn
        return None

    async def open_connection(self, lane: Lane) -> WsConnection:
        """A new connection for ``lane``; its frames are held until :meth:`_attach` (so a
        successor can open while the current connection still serves the lane)."""
        return await WsConnection.open(self.lane_url(lane), self.ws_options())

    def _attach(self, lane: Lane, conn: WsConnection) -> None:
        """Make ``conn`` the lane's connection: a new session, the frames it held replayed."""
        lane.conn = conn
        lane.connection_id = conn.connection_id
        lane.session = self.new_session(lane, conn)

        def handle(text: str, received_us: int, position: int) -> None:
            self._frame(lane, conn, text, received_us, position)

        conn.attach(handle)
        if self._paused:
            conn.pause_reading()

    def _count_connection(self, lane: Lane) -> None:
        if lane.connections:
            lane.tracker.mark_reconnect()
            self.stats.reconnects += 1
        lane.connections += 1

    def connected(self, lane: Lane) -> None:
        """The lane is open and subscribed (an exchange's session calls this)."""
        lane.backoff.reset()
        lane.connected = True
        detail: dict[str, FieldValue] = {"connection_id": lane.connection_id, "lane": lane.index}
        self._deliver([Control(ControlKind.CONNECTED, None, detail)])
        if self._newest_id is not None:
            if lane.history_check is not None:
                lane.history_check.cancel()
            known = {s: lane.tracker.last_seen(s) for s in lane.symbols}
            lane.history_check = asyncio.get_running_loop().create_task(
                self._check_history(lane, {s: i for s, i in known.items() if i is not None})
            )

    async def _check_history(self, lane: Lane, known: dict[str, int]) -> None:
        """Trades the exchange made before a (re)connect that no live trade has revealed yet.

        A gap is found when the next live trade's id jumps; a symbol that stays quiet after a
        reconnect or a restart (its last trade in flight when the connection or the process
        died) would hide one until it trades again, maybe hours later. So each symbol still
        quiet after :attr:`history_check_s` has its newest id read from the exchange's history, and
        anything past the last id seen is a gap (``history_check``), backfilled as any other.
        """
        assert self._newest_id is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=self.history_check_s)
            return
        quiet = [s for s, last in known.items() if lane.tracker.last_seen(s) == last]
        for symbol in quiet[: self.history_check_max]:
            try:
                newest = await self._newest_id(symbol)
            except Exception as exc:  # noqa: BLE001 - the exchange's REST answered badly: the live feed goes on
                error = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                if error not in self._warned:
                    self._warned.add(error)
                    log.warning("feed_history_check_failed", exchange=self.exchange, error=error)
                continue
            gap = None if newest is None else lane.tracker.advance(symbol, newest)
            if gap is not None:
                self.stats.gaps += 1
                self._log_gap(gap)
                self._deliver([gap])

    def _disconnected(self, lane: Lane, reason: str) -> None:
        lane.connected = False
        lane.conn = None
        if not self._closing.is_set():
            detail: dict[str, FieldValue] = {"reason": reason, "lane": lane.index}
            self._deliver([Control(ControlKind.DISCONNECTED, None, detail), *self.lane_ended(lane)])

    async def _pause(self, lane: Lane, reason: str) -> None:
        delay = lane.backoff.next_delay()
        log.warning(
            "ws_reconnect_scheduled",
            exchange=self.exchange,
            lane=lane.index,
            delay_s=round(delay, 3),
            attempt=lane.backoff.attempt,
            reason=reason,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=delay)

    # --- frames -----------------------------------------------------------------------------

    def _frame(
        self, lane: Lane, conn: WsConnection, text: str, received_us: int, position: int
    ) -> None:
        self.stats.frames += 1
        # tuple.__new__ is Envelope(...) without the named tuple's Python-level constructor
        values = (received_us, lane.connection_id, position, self.protocol)
        envelope = tuple.__new__(Envelope, values)
        parsed = self.parse(text, envelope)
        if parsed.trades and not parsed.controls and parsed.malformed is None:
            self._deliver(self.accept_trades(lane, parsed.trades))  # the hot path
            return
        events: list[FeedEvent] = []
        if parsed.malformed is not None:
            self._note_malformed(parsed.malformed)
            events.append(parsed.malformed)
        if parsed.unknown_kind is not None:
            self._note_unknown(parsed.unknown_kind)
        for control in parsed.controls:
            self.on_control(lane, control)
            events.append(control)
        if parsed.trades:
            events.extend(self.accept_trades(lane, parsed.trades))
        if parsed.books:
            events.extend(self.accept_books(lane, parsed.books, envelope))
        self._deliver(events)

    def last_seen(self, symbol: str) -> float | None:
        """When the last live trade of ``symbol`` arrived (``time.monotonic``); None before."""
        return self._silence.last_seen(symbol)

    def accept_trades(self, lane: Lane, trades: Sequence[RawTrade]) -> list[FeedEvent]:
        """Trades checked against their symbol's id sequence: replays dropped, gaps reported."""
        events: list[FeedEvent] = []
        append, observe, seen = events.append, lane.tracker.observe, self._silence.seen
        active = None  # the symbol last marked seen: once per run of a symbol, not per trade
        for trade in trades:
            symbol, key = trade.native_symbol, trade.trade_key
            if key is not None:
                verdict = observe(symbol, key)
                if verdict.duplicate:
                    self.stats.duplicates_dropped += 1
                    continue
                if verdict.gap is not None:
                    self.stats.gaps += 1
                    self._log_gap(verdict.gap)
                    append(verdict.gap)
            if symbol != active:
                active = symbol
                seen(symbol)
            append(trade)
        self.stats.trades += len(trades)
        return events

    def accept_books(self, lane: Lane, books: Sequence[Any], envelope: Envelope) -> list[FeedEvent]:
        """Book messages of one frame applied to the lane's books, in order: one
        :class:`~k2.exchanges.booksync.BookUpdate` each. A trade feed reads none (a book
        message on it is a kind it does not use)."""
        self._note_unknown("book")
        return []

    async def on_tick(self, lane: Lane) -> None:
        """Called about once a second by the lane's session while it is open."""

    def lane_ended(self, lane: Lane) -> list[FeedEvent]:
        """What a lane's lost connection means beyond the DISCONNECTED control (a book feed's
        books become unverified)."""
        return []

    def _deliver(self, events: list[FeedEvent]) -> None:
        sink = self._sink
        if sink is None or not events:
            return
        if not sink.accept(events) and not self._paused:
            self._paused = True
            for lane in self._lanes:
                if lane.conn is not None:
                    lane.conn.pause_reading()
            asyncio.get_running_loop().create_task(self._resume_when_ready(sink))

    async def _resume_when_ready(self, sink: FeedSink) -> None:
        await sink.ready()
        self._paused = False
        for lane in self._lanes:
            if lane.conn is not None:
                lane.conn.resume_reading()

    # --- logging once per kind --------------------------------------------------------------

    def _log_gap(self, gap: Gap) -> None:
        """WARNING for reconnect gaps and a symbol's first sequence gap, DEBUG after that."""
        first = gap.native_symbol not in self._gap_warned
        self._gap_warned.add(gap.native_symbol)
        level = log.warning if first or gap.detected_by == "reconnect" else log.debug
        level(
            "feed_gap_detected",
            exchange=self.exchange,
            symbol=gap.native_symbol,
            first_missing=gap.first_missing,
            last_missing=gap.last_missing,
            detected_by=gap.detected_by,
        )

    def _note_malformed(self, malformed: Malformed) -> None:
        self.stats.malformed += 1
        level = log.warning if self.stats.malformed == 1 else log.debug
        level("feed_malformed_frame_received", exchange=self.exchange, error=malformed.error)

    def _note_unknown(self, kind: str) -> None:
        count = self.stats.unknown_kinds.get(kind, 0) + 1
        self.stats.unknown_kinds[kind] = count
        if count == 1:
            log.warning("feed_unknown_message_kind", exchange=self.exchange, kind=kind)

    def warn_once(self, message: str) -> None:
        """An exchange error that names no symbol: WARNING the first time each message is seen."""
        if message not in self._warned:
            self._warned.add(message)
            log.warning("feed_error_received", exchange=self.exchange, message=message)

    # --- housekeeping -----------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        """Once a second: silence checks; every ``reference_refresh_s``: listings."""
        refresh_s = getattr(self.options, "reference_refresh_s", None)
        next_refresh = time.monotonic() + refresh_s if refresh_s else None
        while True:
            await asyncio.sleep(1.0)
            for silence in self._silence.due():
                self._report_silence(silence)
            if next_refresh is not None and time.monotonic() >= next_refresh:
                next_refresh = time.monotonic() + (refresh_s or 0.0)
                with contextlib.suppress(Exception):
                    await self.refresh_listings()

    async def refresh_listings(self) -> tuple[list[str], list[str]]:
        """Re-read the reference data: subscribe new listings, drop delisted symbols.

        Returns ``(added, removed)``. Explicit symbols are resolved again from the configured
        names: one the exchange no longer lists or trades is dropped, and taken up again when it
        comes back; ``*`` follows every listing.
        """
        try:
            listed = await self.list_symbols(self.options.symbols, strict=False)
        except Exception as exc:
            log.warning("feed_reference_refresh_failed", exchange=self.exchange, error=str(exc))
            raise
        current = set(self._natives)
        added = [symbol for symbol in listed if symbol not in current]
        removed = [symbol for symbol in self._natives if symbol not in set(listed)]
        if removed:
            log.info("feed_symbols_delisted", exchange=self.exchange, symbols=removed)
            await self._drop(removed)
        if added:
            log.info("feed_symbols_listed", exchange=self.exchange, symbols=added)
            await self._place(added)
        return added, removed

    async def _drop(self, removed: Sequence[str]) -> None:
        gone = set(removed)
        self._natives = [symbol for symbol in self._natives if symbol not in gone]
        for lane in self._lanes:
            leaving = [symbol for symbol in lane.symbols if symbol in gone]
            if leaving:
                lane.symbols[:] = [symbol for symbol in lane.symbols if symbol not in gone]
                if lane.connected:
                    with contextlib.suppress(WsConnectionError):
                        await self.change_subscriptions(lane, [], leaving)

    async def _place(self, added: Sequence[str]) -> None:
        self._natives.extend(added)
        self._silence.watch(added)
        size = self.capacity()
        pending = list(added)
        for lane in self._lanes:
            room = size - len(lane.symbols)
            if room <= 0 or not pending:
                continue
            joining, pending = pending[:room], pending[room:]
            lane.symbols.extend(joining)
            if lane.connected:
                with contextlib.suppress(WsConnectionError):
                    await self.change_subscriptions(lane, joining, [])
        for start in range(0, len(pending), size):
            self._add_lane(pending[start : start + size])

    def _report_silence(self, silence: Silence) -> None:
        self.stats.silences += 1
        log.warning(
            "feed_silence_detected" if silence.ever_seen else "feed_stream_empty_detected",
            exchange=self.exchange,
            symbol=silence.key,
            silent_s=round(silence.silent_s, 1),
        )
        if self._on_silence is not None:
            self._on_silence(silence)
