"""Binance's book feed: the diff depth stream ``<symbol>@depth@100ms`` on REST snapshots.

Binance's procedure (:mod:`k2.exchanges.binance.book`): the stream is opened first and its
events buffered, then ``GET /api/v3/depth`` gives the snapshot that the buffered events continue.
The feed asks for a snapshot of every symbol of a lane when the lane connects (and reconnects),
and of one symbol when its update ids break or its snapshot was too old; snapshots are fetched
one at a time, paced below Binance's request weight limit (a snapshot of up to 1,000 levels
weighs 50 of the 6,000 a minute allows; see docs/book-protocols.md).

An event that arrives while its book waits for a snapshot is held back until the snapshot
decides it (older than the snapshot: ignored; else applied and verified), so each record carries
its final verdict; the snapshot's own record comes first, with connection ``rest``, then the
events it decided, in the order received.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from k2.errors import ExchangeError
from k2.exchanges.base import Envelope, FeedEvent, ParsedFrame, Silence
from k2.exchanges.binance import EXCHANGE, wire
from k2.exchanges.binance.book import (
    BUFFER_LIMIT,
    BinanceBooks,
    DepthUpdate,
    parse_book_frame,
    read_snapshot,
)
from k2.exchanges.binance.client import BinanceFeedClient, BinanceFeedOptions
from k2.exchanges.bookfeed import BookFeed
from k2.exchanges.booksync import BookMalformed, BookUpdate, Outcome, Reason, Verdict
from k2.exchanges.feed import Lane, NewestId
from k2.transport.http import RestPacer, fetch_json

log = structlog.get_logger(__name__)

REST_CONNECTION = "rest"
REST_PROTOCOL = "binance-rest"
_WEIGHT_PER_MINUTE = 6_000
_BUDGET_SHARE = 0.5  # of the weight a minute, left to the trade feed's backfills and others


def snapshot_weight(limit: int) -> int:
    """The request weight Binance charges for a depth snapshot of ``limit`` levels a side."""
    for most, weight in ((100, 5), (500, 25), (1000, 50)):
        if limit <= most:
            return weight
    return 250


class BinanceBookFeed(BookFeed, BinanceFeedClient):
    """Every configured symbol's book on Binance, as :class:`BookUpdate` events."""

    def __init__(
        self,
        options: BinanceFeedOptions,
        on_silence: Callable[[Silence], None] | None = None,
        newest_id: NewestId | None = None,
    ) -> None:
        super().__init__(options, on_silence, None)  # books have no trade history to check
        self.depth = options.book_depth
        interval = snapshot_weight(self.depth) * 60 / (_WEIGHT_PER_MINUTE * _BUDGET_SHARE)
        self._pacer = RestPacer(interval)
        self._held: dict[str, deque[tuple[DepthUpdate, Envelope]]] = {}
        self._wanted: dict[str, Lane] = {}  # symbols whose snapshot is due, in order asked
        self._wake: asyncio.Event | None = None
        self._fetcher: asyncio.Task[None] | None = None
        self._rest_position = 0

    def streams(self, symbols: Sequence[str]) -> list[str]:
        return [f"{symbol.lower()}@depth@100ms" for symbol in symbols]

    def parse(self, text: str, envelope: Envelope) -> ParsedFrame:
        return parse_book_frame(text, envelope, self.options.max_frame_chars)

    def new_books(self, lane: Lane) -> BinanceBooks:
        return BinanceBooks()

    def apply(
        self, books: Any, message: Any, envelope: Envelope
    ) -> list[tuple[str | None, Verdict, Any]]:
        symbol, verdict = books.apply(message)
        if isinstance(message, BookMalformed):
            return [(symbol, verdict, None)]
        if verdict.outcome is Outcome.BUFFERED:
            self._hold(message, envelope)
            return []  # decided, and recorded, when the snapshot comes
        return [(symbol, verdict, message)]

    def book_update(
        self, part: Any, symbol: str, verdict: Verdict, envelope: Envelope, index: int
    ) -> BookUpdate:
        event: DepthUpdate = part
        return BookUpdate(
            EXCHANGE,
            symbol,
            False,
            event.bids,
            event.asks,
            event.event_ms * 1_000,
            event.last_id,
            event.first_id,
            None,
            verdict,
            envelope,
            index,
        )

    def held(self) -> list[FeedEvent]:
        waiting = Verdict(Outcome.UNVERIFIED, Reason.AWAITING_SNAPSHOT)
        events: list[FeedEvent] = []
        for symbol, held in self._held.items():
            for event, envelope in held:
                events.append(self.book_update(event, symbol, waiting, envelope, 0))
        self._held.clear()
        return events

    def _hold(self, event: DepthUpdate, envelope: Envelope) -> None:
        held = self._held.get(event.symbol)
        if held is None:
            held = self._held[event.symbol] = deque(maxlen=BUFFER_LIMIT)
        held.append((event, envelope))

    # --- snapshots ------------------------------------------------------------------------

    def connected(self, lane: Lane) -> None:
        super().connected(lane)
        self._want(lane, lane.symbols)

    async def resync(self, lane: Lane, symbols: Sequence[str]) -> None:
        self._want(lane, symbols)

    def _want(self, lane: Lane, symbols: Sequence[str]) -> None:
        for symbol in symbols:
            self._wanted.setdefault(symbol, lane)
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._fetcher is None or self._fetcher.done():
            self._fetcher = asyncio.get_running_loop().create_task(self._fetch_snapshots())

    async def close(self) -> None:
        if self._fetcher is not None:
            self._fetcher.cancel()
        await super().close()

    async def _fetch_snapshots(self) -> None:
        """Fetch due snapshots one at a time, paced, until the feed closes."""
        assert self._wake is not None
        while True:
            if not self._wanted:
                self._wake.clear()
                await self._wake.wait()
                continue
            symbol, lane = next(iter(self._wanted.items()))
            del self._wanted[symbol]
            if symbol not in lane.symbols:
                continue
            url = (
                self.options.rest_url.rstrip("/")
                + f"{wire.DEPTH_PATH}?symbol={symbol}&limit={self.depth}"
            )
            timeout = self.options.reference_timeout_s
            try:
                data = await self._pacer.call(functools.partial(fetch_json, url, timeout))
            except ExchangeError as exc:
                self.warn_once(f"depth snapshot failed: {exc}")
                self._wanted.setdefault(symbol, lane)  # asked again after the others
                continue
            self._deliver(self._snapshot(lane, symbol, data))

    def _snapshot(self, lane: Lane, symbol: str, data: object) -> list[FeedEvent]:
        """Apply one REST snapshot and the held events it decides; their events."""
        now_us = time.time_ns() // 1_000
        envelope = Envelope(now_us, REST_CONNECTION, self._rest_position, REST_PROTOCOL)
        self._rest_position += 1
        snapshot = read_snapshot(data)
        book = self.books_of(lane).book(symbol)
        if isinstance(snapshot, BookMalformed):
            self.warn_once(f"depth snapshot of {symbol} unreadable: {snapshot.error}")
            return self.observe(lane, symbol, book.malformed(snapshot.error), now_us)
        pending = list(book.buffer)
        verdicts = book.apply_snapshot(snapshot)
        first = BookUpdate(
            EXCHANGE,
            symbol,
            True,
            snapshot.bids,
            snapshot.asks,
            None,
            snapshot.last_update_id,
            None,
            None,
            verdicts[0],
            envelope,
        )
        events: list[FeedEvent] = [first, *self.observe(lane, symbol, verdicts[0], now_us)]
        held = self._held.get(symbol, deque())
        waiting = {id(event): envelope for event, envelope in held}
        for event, verdict in zip(pending, verdicts[1:], strict=False):
            if verdict.outcome is Outcome.BUFFERED:
                continue  # broken again after the snapshot: held for the next one
            received = waiting.pop(id(event), None)
            if received is not None:  # not recorded yet (a break's event already was)
                events.append(self.book_update(event, symbol, verdict, received, 0))
            events.extend(self.observe(lane, symbol, verdict, now_us))
        self._held[symbol] = deque(
            ((event, env) for event, env in held if id(event) in waiting), maxlen=BUFFER_LIMIT
        )
        return events
