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
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from k2.errors import ExchangeError
from k2.exchanges.base import Envelope, FeedEvent, ParsedFrame, Silence
from k2.exchanges.binance import EXCHANGE, wire
from k2.exchanges.binance.book import (
    BinanceBooks,
    DepthSnapshot,
    DepthUpdate,
    parse_book_frame,
    read_snapshot,
)
from k2.exchanges.binance.client import BinanceFeedClient, BinanceFeedOptions
from k2.exchanges.binance.normalise import trade_time_micros
from k2.exchanges.bookfeed import Applied, BookFeed
from k2.exchanges.booksync import BookMalformed, BookUpdate, Outcome, Verdict
from k2.exchanges.feed import Lane, NewestId
from k2.transport.http import RestPacer, fetch_json

log = structlog.get_logger(__name__)

PROTOCOL = "binance-depth"
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
        self.protocol = PROTOCOL
        interval = snapshot_weight(self.depth) * 60 / (_WEIGHT_PER_MINUTE * _BUDGET_SHARE)
        self._pacer = RestPacer(interval)
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

    def apply(self, books: Any, message: Any, envelope: Envelope) -> list[Applied]:
        symbol, verdict = books.apply(message)
        if verdict.outcome is Outcome.BUFFERED and symbol is not None:
            return self.hold(symbol, message, envelope)  # recorded once its snapshot decides
        return [Applied(symbol, verdict, None if isinstance(message, BookMalformed) else message)]

    def book_update(
        self, part: Any, symbol: str, verdict: Verdict, envelope: Envelope, index: int
    ) -> BookUpdate:
        if isinstance(part, DepthSnapshot):
            return BookUpdate(
                EXCHANGE, symbol, True, part.bids, part.asks, None, part.last_update_id, None,
                None, verdict, envelope, index,
            )  # fmt: skip
        event: DepthUpdate = part
        exchange_us = trade_time_micros(event.event_time, self.options.time_unit)
        return BookUpdate(
            EXCHANGE, symbol, False, event.bids, event.asks, exchange_us, event.last_id,
            event.first_id, None, verdict, envelope, index,
        )  # fmt: skip

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
        first = snapshot
        outcomes = [
            Applied(symbol, verdicts[0], first),
            *self.release(symbol, pending, verdicts[1:]),
        ]
        return self.decided(lane, outcomes, envelope)
