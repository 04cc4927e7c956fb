"""The Kraken feed client: WebSocket v2 (default) or v1, public ``trade`` channel.

Life of a feed: read ``AssetPairs`` and refuse unknown symbols before connecting; connect;
subscribe all pairs in one request and confirm every pair from its own ack (a rejected pair is a
:class:`~k2.errors.SubscriptionRejectedError` naming it and Kraken's message); then yield every
trade, gap, malformed frame and control message. Keep-alive is Kraken's application ping; a
connection with no frame of any kind within the liveness deadline (Kraken sends heartbeats every
second) is dropped and replaced, with capped, fully jittered exponential backoff.

Replays and gaps: on every (re)subscription Kraken re-sends recent trades (v1 always, v2 when
asked, which K2 always does after a reconnect). v2 trades carry per-pair ``trade_id`` sequence
numbers: replayed ids are dropped and a jump is reported as a :class:`~k2.exchanges.base.Gap`
with the exact missing ids. v1 has no ids: each pair's first trade frame after a subscription is
the snapshot, its trades get the same ``message_id`` as when first received (see
:class:`~k2.exchanges.kraken.normalise.V1OccurrenceCounter`), and those already seen are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import structlog

from k2.errors import SubscriptionRejectedError, WsConnectionError
from k2.exchanges.base import (
    Control,
    ControlKind,
    Envelope,
    FeedEvent,
    FeedStats,
    Gap,
    Malformed,
    RawTrade,
    SequenceTracker,
    Silence,
    SilenceMonitor,
)
from k2.exchanges.kraken import EXCHANGE, wire
from k2.exchanges.kraken.normalise import V1OccurrenceCounter, v1_message_id
from k2.exchanges.kraken.parse import DEFAULT_MAX_FRAME_CHARS, parse_frame
from k2.exchanges.kraken.symbols import KrakenPair, parse_asset_pairs, resolve_pairs
from k2.transport.http import fetch_json
from k2.transport.ws import Backoff, WsConnection, WsOptions

log = structlog.get_logger(__name__)

KrakenProtocol = Literal["kraken-v1", "kraken-v2"]
_RECENT_V1_IDS = 4 * wire.SNAPSHOT_SIZE  # per pair, to recognise a re-sent v1 snapshot


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
    max_frame_chars: int = DEFAULT_MAX_FRAME_CHARS
    last_trade_ids: Mapping[str, int] = field(default_factory=dict)  # v2 name → id, resume

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
    """State of one connection's subscription."""

    conn: WsConnection
    pending: set[str]
    deadline: float
    confirmed: bool = False
    venue_connection_id: str | None = None
    counter: V1OccurrenceCounter = field(default_factory=V1OccurrenceCounter)
    snapshot_pending: set[str] = field(default_factory=set)


class KrakenFeedClient:
    """Kraken public trades as :data:`~k2.exchanges.base.FeedEvent` s (implements FeedClient)."""

    exchange = EXCHANGE

    def __init__(
        self, options: KrakenFeedOptions, on_silence: Callable[[Silence], None] | None = None
    ) -> None:
        self.options = options
        self.stats = FeedStats()
        self._on_silence = on_silence
        self._tracker = SequenceTracker(EXCHANGE)
        for symbol, last_id in options.last_trade_ids.items():
            self._tracker.seed(symbol, last_id)
        self._silence = SilenceMonitor(options.silence_warning_s)
        self._recent: dict[str, _RecentIds] = {}
        self._warned: set[str] = set()
        self._gap_warned: set[str] = set()
        self._natives: list[str] = []
        self._reqid = 0
        self._conn: WsConnection | None = None
        self._closing = asyncio.Event()
        self._ws_options = WsOptions(
            liveness_timeout_s=options.liveness_timeout_s, ping_interval_s=None
        )

    async def load_reference(self) -> list[KrakenPair]:
        """The configured pairs from ``AssetPairs``; raises UnknownSymbolError for the first
        symbol Kraken does not list."""
        url = self.options.rest_url.rstrip("/") + wire.ASSET_PAIRS_PATH
        payload = await fetch_json(url, self.options.reference_timeout_s)
        pairs = resolve_pairs(self.options.symbols, parse_asset_pairs(payload))
        self._natives = list(dict.fromkeys(p.native(self.options.protocol) for p in pairs))
        return pairs

    async def close(self) -> None:
        """Stop: the event stream ends after the current frame; the connection is closed."""
        self._closing.set()
        if self._conn is not None:
            await self._conn.close()

    async def events(self) -> AsyncIterator[FeedEvent]:
        """Connect, subscribe and yield events until :meth:`close`; reconnects on its own."""
        await self.load_reference()
        self._silence.watch(self._natives)
        backoff = Backoff(self.options.backoff_base_s, self.options.backoff_cap_s)
        connections = 0
        while not self._closing.is_set():
            try:
                conn = await WsConnection.open(self.options.url, self._ws_options)
            except WsConnectionError as exc:
                await self._pause(backoff, str(exc))
                continue
            if self._closing.is_set():  # close() came while connecting
                await conn.close()
                break
            if connections:
                self._tracker.mark_reconnect()
                self.stats.reconnects += 1
            connections += 1
            self._conn = conn
            try:
                async with contextlib.aclosing(self._session(conn, backoff)) as session:
                    async for event in session:
                        yield event
            except WsConnectionError as exc:
                if self._closing.is_set():
                    break
                yield Control(ControlKind.DISCONNECTED, None, {"reason": str(exc)})
                await self._pause(backoff, str(exc))
            finally:
                self._conn = None
                await conn.close()

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

    def _next_reqid(self) -> int:
        self._reqid += 1
        return self._reqid

    def _subscribe_request(self, first: bool) -> str:
        if self.options.protocol == "kraken-v1":
            return wire.v1_subscribe(self._natives, self._next_reqid())
        snapshot = self.options.snapshot or not first
        return wire.v2_subscribe(self._natives, snapshot, self._next_reqid())

    async def _session(
        self, conn: WsConnection, backoff: Backoff
    ) -> AsyncGenerator[FeedEvent, None]:
        deadline = time.monotonic() + self.options.subscribe_timeout_s
        state = _Session(conn, set(self._natives), deadline)
        await conn.send_control(self._subscribe_request(first=self.stats.reconnects == 0))
        keepalive = asyncio.create_task(self._keepalive(conn))
        try:
            while True:
                text = await conn.recv()
                envelope = Envelope(
                    received_us=time.time_ns() // 1000,
                    connection_id=state.venue_connection_id or conn.connection_id,
                    position=conn.frames_received - 1,
                    protocol=self.options.protocol,
                )
                for event in self._handle(text, envelope, state):
                    yield event
                if state.pending and time.monotonic() > state.deadline:
                    missing = ", ".join(sorted(state.pending))
                    raise WsConnectionError(f"kraken did not confirm the subscription to {missing}")
                if not state.pending and not state.confirmed:
                    state.confirmed = True
                    backoff.reset()
                    log.info("ws_subscribed", exchange=EXCHANGE, symbols=self._natives)
                    yield Control(
                        ControlKind.CONNECTED, None, {"connection_id": envelope.connection_id}
                    )
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive

    async def _keepalive(self, conn: WsConnection) -> None:
        """Application pings on schedule and per-symbol silence checks, once a second."""
        interval = self.options.ping_interval_s
        next_ping = time.monotonic() + interval
        with contextlib.suppress(WsConnectionError):
            while True:
                await asyncio.sleep(min(1.0, interval))
                if time.monotonic() >= next_ping:
                    next_ping = time.monotonic() + interval
                    if self.options.protocol == "kraken-v1":
                        await conn.send_control(wire.v1_ping(self._next_reqid()))
                    else:
                        await conn.send_control(wire.v2_ping(self._next_reqid()))
                for silence in self._silence.due():
                    self._report_silence(silence)

    def _report_silence(self, silence: Silence) -> None:
        self.stats.silences += 1
        log.warning(
            "feed_silence_detected" if silence.ever_seen else "feed_stream_empty_detected",
            exchange=EXCHANGE,
            symbol=silence.key,
            silent_s=round(silence.silent_s, 1),
        )
        if self._on_silence is not None:
            self._on_silence(silence)

    def _handle(self, text: str, envelope: Envelope, state: _Session) -> list[FeedEvent]:
        self.stats.frames += 1
        parsed = parse_frame(text, envelope, self.options.max_frame_chars)
        events: list[FeedEvent] = []
        if parsed.malformed is not None:
            self._note_malformed(parsed.malformed)
            events.append(parsed.malformed)
        if parsed.unknown_kind is not None:
            self._note_unknown(parsed.unknown_kind)
        for control in parsed.controls:
            self._on_control(control, state)
            events.append(control)
        if parsed.trades:
            if self.options.protocol == "kraken-v1":
                events.extend(self._v1_trades(parsed.trades, state))
            else:
                events.extend(self._v2_trades(parsed.trades))
        return events

    def _note_malformed(self, malformed: Malformed) -> None:
        self.stats.malformed += 1
        if self.stats.malformed == 1:
            log.warning("feed_malformed_frame_received", exchange=EXCHANGE, error=malformed.error)
        else:
            log.debug("feed_malformed_frame_received", exchange=EXCHANGE, error=malformed.error)

    def _note_unknown(self, kind: str) -> None:
        count = self.stats.unknown_kinds.get(kind, 0) + 1
        self.stats.unknown_kinds[kind] = count
        if count == 1:
            log.warning("feed_unknown_message_kind", exchange=EXCHANGE, kind=kind)

    def _on_control(self, control: Control, state: _Session) -> None:
        kind, symbol, detail = control.kind, control.symbol, control.detail
        if kind == ControlKind.STATUS:
            if detail.get("connection_id") is not None:
                state.venue_connection_id = str(detail["connection_id"])
            status = detail.get("status", detail.get("system"))
            if status != "online":
                log.warning("exchange_status_received", exchange=EXCHANGE, status=status)
        elif kind == ControlKind.SUBSCRIBED:
            if detail.get("channel_name", detail.get("channel", "trade")) != "trade":
                return
            if symbol is not None:
                state.pending.discard(symbol)
                state.snapshot_pending.add(symbol)
            log.debug("ws_symbol_subscribed", exchange=EXCHANGE, symbol=symbol)
        elif kind == ControlKind.SUBSCRIPTION_REJECTED:
            message = str(detail.get("message", "no reason given"))
            named = symbol or _symbol_in(message, self._natives) or "?"
            raise SubscriptionRejectedError(
                f"kraken rejected the subscription to {named}: {message}"
            )
        elif kind == ControlKind.UNSUBSCRIBED and symbol in self._natives:
            raise WsConnectionError(f"kraken unsubscribed {symbol}; resubscribing")
        elif kind == ControlKind.ERROR:
            message = str(detail.get("message"))
            if message not in self._warned:
                self._warned.add(message)
                log.warning("feed_error_received", exchange=EXCHANGE, message=message)

    def _v2_trades(self, trades: Sequence[RawTrade]) -> list[FeedEvent]:
        events: list[FeedEvent] = []
        for trade in trades:
            symbol = trade.native_symbol
            if trade.trade_key is not None:
                verdict = self._tracker.observe(symbol, trade.trade_key)
                if verdict.duplicate:
                    self.stats.duplicates_dropped += 1
                    continue
                if verdict.gap is not None:
                    self.stats.gaps += 1
                    self._log_gap(verdict.gap)
                    events.append(verdict.gap)
            self._silence.seen(symbol)
            self.stats.trades += 1
            events.append(trade)
        return events

    def _log_gap(self, gap: Gap) -> None:
        """WARNING for reconnect gaps and the first sequence gap of a symbol, DEBUG after that
        (Kraken v2 ids are known to skip now and then; every gap is still a Gap event)."""
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

    def _v1_trades(self, trades: Sequence[RawTrade], state: _Session) -> list[FeedEvent]:
        pair = trades[0].native_symbol
        snapshot = pair in state.snapshot_pending
        state.snapshot_pending.discard(pair)
        recent = self._recent.setdefault(pair, _RecentIds(_RECENT_V1_IDS))
        events: list[FeedEvent] = []
        for raw in trades:
            trade = state.counter.assign(raw)
            if snapshot:
                trade = replace(trade, snapshot=True)
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
    """The subscribed symbol a venue message names (Kraken sometimes omits the field)."""
    return next((symbol for symbol in symbols if message.endswith(symbol)), None)
