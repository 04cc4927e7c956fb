"""One client connection, whatever the protocol: its lifecycle, its faults and its ledger lines.

A protocol (in ``k2.simulator.exchanges.<exchange>``) subclasses :class:`Session` and implements the
exchange's side of the conversation: what is sent on connect, how requests are answered, and how
new trades of the shared history become frames. The base class owns what every exchange has in
common: one writer task that wakes when the market produced trades (or a timer is due), the loop
that reads each subscription's new trades from the history (:meth:`Session.flush`), the faults of
this connection applied to every frame on its way out, and the ledger line of every trade that
left.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import structlog
from aiohttp import WSMsgType, web

from k2.exchanges.base import FieldValue
from k2.simulator.book import BookStep, BookView
from k2.simulator.exchange import ExchangeMarket, now_us
from k2.simulator.faults import BookFault, ConnectionFaults, FaultBook, StallMode, garble
from k2.simulator.ledger import BookLedgerEntry, Ledger, LedgerEntry
from k2.simulator.market import AggTrade, SimTrade
from k2.simulator.settings import SimulatorConfig

log = structlog.get_logger("k2.simulator")
_HIGH_WATER = 1 << 20  # bytes buffered for a client before sending waits
_DRAIN_POLL_S = 0.002

# (trade id, fields as sent) of each trade in one frame, for the ledger.
Emitted = Sequence[tuple[int | None, dict[str, FieldValue]]]


Rendered = tuple[str, Emitted]


class FrameCache:
    """Trade frames already rendered, shared by the connections that send the same trades.

    Connections that keep up with the market send identical frames (same trades, same protocol
    options), so each is rendered once. Keys name the protocol, its options and the trades; the
    cache empties itself when full, which only costs re-rendering.
    """

    def __init__(self, limit: int = 65_536) -> None:
        self._limit = limit
        self._frames: dict[Hashable, Rendered] = {}

    def get(self, key: Hashable, render: Callable[[], Rendered]) -> Rendered:
        found = self._frames.get(key)
        if found is None:
            if len(self._frames) >= self._limit:
                self._frames.clear()
            found = self._frames[key] = render()
        return found


def text_frame(text: str) -> bytes:
    """A whole unmasked WebSocket text frame (server to client, RFC 6455 §5.2)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


@dataclass(eq=False)
class Subscription:
    """What one subscription of a connection has sent: the trades of ``listed`` (the symbol as
    the market lists it) up to ``cursor``, or, with ``aggregates``, its aggregate trades.

    ``active`` is False while its subscribe snapshot is still being sent, and once it is
    cancelled: an inactive subscription gets nothing from :meth:`Session.flush`.
    """

    listed: str
    cursor: int
    aggregates: bool = False
    active: bool = True


@dataclass(eq=False)
class BookSubscription:
    """What one book subscription of a connection has sent: the steps of ``listed``'s book up
    to ``cursor``, as its ``view`` (the replica at the subscription's depth) holds them.

    ``interval_s`` paces the messages (Binance's ``@depth`` every second, ``@depth@100ms``);
    0 sends each flush. ``active`` is False once the subscription is cancelled.
    """

    listed: str
    cursor: int
    view: BookView
    interval_s: float = 0.0
    next_due: float = 0.0
    active: bool = True


S = TypeVar("S", bound=BookSubscription)


class BookChannel(Generic[S]):
    """One connection's subscriptions to its exchange's book channel, by the name the exchange gives
    them (a symbol, a stream, a topic); an exchange's module adds how they are sent."""

    def __init__(self, session: Session, protocol: str) -> None:
        self.session = session
        self.protocol = protocol
        self.subs: dict[str, S] = {}

    def unsubscribe(self, name: str) -> S | None:
        """Stop the subscription ``name``; it, if there was one."""
        sub = self.subs.pop(name, None)
        if sub is not None:
            sub.active = False
        return sub


@dataclass
class SimContext:
    """What every connection and REST handler of one simulator shares."""

    config: SimulatorConfig
    markets: dict[str, ExchangeMarket]
    ledger: Ledger
    faults: FaultBook
    sessions: dict[str, Session] = field(default_factory=dict)
    frames: FrameCache = field(default_factory=FrameCache)
    opened: int = 0
    _ids: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ids = random.Random(f"{self.config.seed}/connections")

    def exchange_connection_id(self) -> int:
        """A Kraken-style u64 connection id; the top bit is set so it overflows int64."""
        return self._ids.getrandbits(64) | (1 << 63)


class Session:
    """The exchange side of one WebSocket connection."""

    protocol: ClassVar[str]
    exchange: ClassVar[str]

    def __init__(self, ctx: SimContext, ws: web.WebSocketResponse, request: web.Request) -> None:
        ctx.opened += 1
        self.ctx = ctx
        self.ws = ws
        self.request = request
        self.name = f"{self.protocol}#{ctx.opened}"
        self.market = ctx.markets[self.exchange]
        self.faults = ConnectionFaults()
        for rule in ctx.faults.claim(self.protocol):
            self.faults.add(rule)
        self.opened = time.monotonic()
        self.last_traffic = self.opened  # last trade frame or heartbeat sent
        self.dropped = False
        self._held: list[LedgerEntry] = []

    # --- what a protocol implements -----------------------------------------------------------

    async def on_open(self) -> None:
        """Send what the exchange sends on connect."""

    async def on_text(self, text: str) -> None:
        """Answer one text frame from the client."""

    async def on_binary(self, data: bytes) -> None:
        """Answer one binary frame (exchanges ignore or refuse them)."""

    def subscriptions(self) -> Iterable[Subscription]:
        """The connection's subscriptions to trades, active or not."""
        return ()

    async def send_new(self, sub: Subscription, items: list[SimTrade] | list[AggTrade]) -> bool:
        """Send a subscription's trades (or aggregates) that are new since its cursor; False
        ends this flush (a fault took effect, or the connection ended)."""
        return True

    def book_subscriptions(self) -> Iterable[BookSubscription]:
        """The connection's subscriptions to order books."""
        return ()

    async def send_book_steps(self, sub: BookSubscription, steps: list[BookStep]) -> bool:
        """Send what a book subscription's view makes of the book's new steps; False ends this
        flush (a fault took effect, or the connection ended)."""
        return True

    async def on_timer(self) -> bool:
        """Periodic duties (heartbeats, pings, deadlines); False ends the connection."""
        return True

    def wakeup_in(self) -> float:
        """Seconds until :meth:`on_timer` must run even if no trade arrives."""
        return 1.0

    def describe(self) -> dict[str, Any]:
        books = sorted({sub.listed for sub in self.book_subscriptions()})
        return {"name": self.name, "protocol": self.protocol, "books": books}

    def request_shutdown(self, grace_s: float | None = None) -> bool:
        """Announce that the exchange will close this connection (Binance ``serverShutdown``)
        and close it after ``grace_s``; False where the protocol has no such notice."""
        return False

    # --- shared machinery ---------------------------------------------------------------------

    async def flush(self) -> None:
        """Send each active subscription's trades that are not sent yet, in its protocol's
        frames; a subscription that fell out of the retained history drops the connection
        (a slow consumer, as the exchanges cut them)."""
        histories = self.market.histories
        for sub in list(self.subscriptions()):
            if not sub.active:
                continue
            history = histories[sub.listed]
            end = history.agg_end if sub.aggregates else history.trade_end
            if end == sub.cursor:
                continue  # most of an exchange's symbols have nothing new at any moment
            if sub.aggregates:
                items: list[SimTrade] | list[AggTrade] | None = history.aggs_from(sub.cursor)
            else:
                items = history.trades_from(sub.cursor)
            if items is None:
                self.drop("slow_consumer")
                return
            sub.cursor = end
            if not await self.send_new(sub, items):
                return
        await self.flush_books()

    async def flush_books(self) -> None:
        """Send each active book subscription's new steps (when its pace allows); one whose
        steps were trimmed from the book's memory drops the connection, as for trades."""
        subs = list(self.book_subscriptions())
        if not subs:
            return  # most connections follow trades only
        books, now = self.market.books, time.monotonic()
        for sub in subs:
            if not sub.active or now < sub.next_due:
                continue
            book = books[sub.listed]
            if book.step_end == sub.cursor:
                continue
            steps = book.steps_from(sub.cursor)
            if steps is None:
                self.drop("slow_consumer")
                return
            sub.cursor = book.step_end
            sub.next_due = now + sub.interval_s
            if not await self.send_book_steps(sub, steps):
                return

    def book_fault(self) -> BookFault | None:
        """Count one book update of this connection; the fault to apply to it, if any."""
        return self.faults.on_book_update()

    async def emit_book(self, frame: str | None, entry: BookLedgerEntry) -> None:
        """Send one book message (``None``: left out by a fault) and record it in the ledger."""
        if frame is not None:
            await self.write([text_frame(frame)])
        if self.ctx.ledger.enabled:
            self.ctx.ledger.write([entry])

    def skip_to_head(self) -> None:
        """Move every cursor to the end of the history (trades of a stall are never sent)."""
        for sub in self.subscriptions():
            history = self.market.histories[sub.listed]
            sub.cursor = history.agg_end if sub.aggregates else history.trade_end

    async def send_batched(
        self, trades: list[SimTrade], send: Callable[[list[SimTrade]], Awaitable[None]]
    ) -> bool:
        """The trades a client may see (lost ones never leave), ``max_batch`` to a frame through
        ``send``, as far as the faults allow; False when sending must stop."""
        batch = self.ctx.config.max_batch
        visible = [trade for trade in trades if not trade.lost]
        for start in range(0, len(visible), batch):
            chunk = visible[start : start + batch]
            room = self.trade_room(len(chunk))
            if room == 0 or self.dropped or self.stall is not None:
                return False
            await send(chunk[:room])
            await asyncio.sleep(0)  # sending does not wait while buffers have room
        return True

    @property
    def stall(self) -> StallMode | None:
        return self.faults.stall_mode()

    async def serve(self) -> None:
        """Run the connection until the client or a fault ends it."""
        self.ctx.sessions[self.name] = self
        log.info("sim_connection_opened", connection=self.name, remote=self.request.remote)
        writer = asyncio.get_running_loop().create_task(self._write_loop(), name=self.name)
        try:
            await self.on_open()
            async for message in self.ws:
                await self._dispatch(message.type, message.data)
        except ConnectionError:
            pass
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await writer
            self.ctx.sessions.pop(self.name, None)
            log.info(
                "sim_connection_closed",
                connection=self.name,
                trades_sent=self.faults.trades_sent,
                dropped=self.dropped,
            )

    async def _dispatch(self, kind: WSMsgType, data: Any) -> None:
        if kind == WSMsgType.TEXT:
            await self.on_text(data)
        elif kind == WSMsgType.BINARY:
            await self.on_binary(data)
        elif kind == WSMsgType.PING:
            await self.on_ping(data)
        elif kind == WSMsgType.PONG:
            self.on_pong(data)

    async def on_ping(self, payload: bytes) -> None:
        """Answer a protocol ping with its payload, unless the connection is silent."""
        if self.stall != "silent":
            await self.ws.pong(payload)

    def on_pong(self, payload: bytes) -> None:
        """A protocol pong from the client (Binance checks them)."""

    async def _write_loop(self) -> None:
        pulse = self.market.pulse
        try:
            while not self.ws.closed and not self.dropped:
                deadline = self.faults.next_deadline()
                wait = self.wakeup_in() if deadline is None else min(deadline, self.wakeup_in())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pulse.wait(), max(wait, 0.001))
                if self.faults.drop_due():
                    self.drop("fault")
                    return
                if not await self.on_timer():
                    return
                if self.stall is None:
                    await self.flush()
                else:
                    self.skip_to_head()
        except ConnectionError:
            return

    async def send_control(self, text: str) -> None:
        """Send a non-trade frame (ack, heartbeat, status...); nothing leaves a silent stall."""
        if self.stall != "silent" and not self.ws.closed:
            await self.ws.send_str(text)

    def nudge(self) -> None:
        """Wake the writer now (a subscription changed its timers), not at its next timeout."""
        self.market.pulse.set()
        self.market.pulse.clear()

    def trade_room(self, wanted: int) -> int:
        """How many of ``wanted`` trades may go before a drop or a stall fault takes effect."""
        for room in (self.faults.trades_before_drop(), self.faults.trades_before_stall()):
            if room is not None:
                wanted = min(wanted, room)
        return wanted

    def prepare(
        self, frame: str, symbol: str, trades: Emitted, *, protocol: str, snapshot: bool = False
    ) -> list[bytes]:
        """One trade frame through this connection's faults: the WebSocket frames to write.

        The ledger lines are held until :meth:`write` has handed the frames to the socket.
        """
        garbled, duplicate = self.faults.on_trade_frame(len(trades))
        data = text_frame(garble(frame) if garbled else frame)
        if self.ctx.ledger.enabled:
            self._hold(symbol, trades, protocol, snapshot, garbled, duplicate)
        return [data, data] if duplicate else [data]

    async def emit(
        self, frame: str, symbol: str, trades: Emitted, *, protocol: str, snapshot: bool = False
    ) -> None:
        """Send one trade frame (see :meth:`prepare`) and record it in the ledger."""
        await self.write(self.prepare(frame, symbol, trades, protocol=protocol, snapshot=snapshot))

    async def write(self, frames: list[bytes]) -> None:
        """Write prepared frames in one go, record their trades, and respect back-pressure.

        Frames are written to the transport directly (whole frames, so they never interleave
        with the control frames aiohttp writes): one system call per batch instead of per frame
        is what lets a connection carry tens of thousands of trades a second.
        """
        transport = self.request.transport
        if self.dropped or transport is None or transport.is_closing():
            self._held.clear()
            raise ConnectionResetError("the connection is closed")
        transport.write(b"".join(frames))
        self.last_traffic = time.monotonic()
        if self._held:
            self.ctx.ledger.write(self._held)
            self._held = []
        while transport.get_write_buffer_size() > _HIGH_WATER:
            if transport.is_closing():
                raise ConnectionResetError("the connection is closed")
            await asyncio.sleep(_DRAIN_POLL_S)
        if self.faults.trades_before_drop() == 0:
            self.drop("fault")

    def _hold(
        self,
        symbol: str,
        trades: Emitted,
        protocol: str,
        snapshot: bool,
        garbled: bool,
        duplicate: bool,
    ) -> None:
        emit_us = now_us()
        copies = (False, True) if duplicate else (False,)
        self._held.extend(
            LedgerEntry(
                self.exchange,
                protocol,
                symbol,
                trade_id,
                fields,
                emit_us,
                self.name,
                snapshot,
                garbled,
                copy,
            )
            for copy in copies
            for trade_id, fields in trades
        )

    def drop(self, reason: str) -> None:
        """End the TCP connection without a WebSocket close frame, as a network failure would.

        The socket is closed (FIN) rather than reset, so the frames already written, and
        recorded in the ledger, still reach the client before the connection ends.
        """
        if self.dropped:
            return
        self.dropped = True
        log.info("sim_connection_dropped", connection=self.name, reason=reason)
        transport = self.request.transport
        if transport is not None:
            transport.close()

    async def close(self, code: int, reason: str) -> None:
        """Close the connection with a close frame (exchange-initiated, orderly)."""
        log.info("sim_connection_close_sent", connection=self.name, code=code, reason=reason)
        with contextlib.suppress(ConnectionError):
            await self.ws.close(code=code, message=reason.encode())
