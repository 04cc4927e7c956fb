"""OKX's book feed: the ``books`` channel on the public endpoint (a 400-level snapshot, then
updates every 100 ms), verified by OKX's CRC32 of the top 25 levels and its ``seqId`` /
``prevSeqId`` (:mod:`k2.exchanges.okx.book`). Updates that arrive before a snapshot are held
back until it decides them; a broken book is resynced by unsubscribing the instrument and
subscribing it again, which starts with a snapshot. OKX allows 480 subscribe and unsubscribe
requests a connection an hour; the client's request window waits when they run out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from k2.exchanges.base import Envelope, ParsedFrame, Silence
from k2.exchanges.bookfeed import Applied, BookFeed
from k2.exchanges.booksync import BookMalformed, BookUpdate, Outcome, Verdict
from k2.exchanges.feed import Lane, NewestId
from k2.exchanges.okx import EXCHANGE, wire
from k2.exchanges.okx.book import OkxBookMessage, OkxBooks, parse_book_frame
from k2.exchanges.okx.client import OkxFeedClient, OkxFeedOptions

PROTOCOL = "okx-books"


class OkxBookFeed(BookFeed, OkxFeedClient):
    """Every configured instrument's book on OKX, as :class:`BookUpdate` events."""

    channel = wire.BOOKS

    def __init__(
        self,
        options: OkxFeedOptions,
        on_silence: Callable[[Silence], None] | None = None,
        newest_id: NewestId | None = None,
    ) -> None:
        super().__init__(options, on_silence, None)  # books have no trade history to check
        self.depth = options.book_depth
        self.protocol = PROTOCOL

    def lane_url(self, lane: Lane) -> str:
        """The public endpoint beside the business one the trades are read from."""
        return self.options.ws_url.replace(wire.BUSINESS_PATH, wire.PUBLIC_PATH)

    def parse(self, text: str, envelope: Envelope) -> ParsedFrame:
        return parse_book_frame(text, envelope, self.options.max_frame_chars)

    def new_books(self, lane: Lane) -> OkxBooks:
        return OkxBooks()

    def apply(self, books: Any, message: Any, envelope: Envelope) -> list[Applied]:
        if isinstance(message, BookMalformed):
            symbol, (verdict,) = books.apply(message)
            return [Applied(symbol, verdict)]
        book = books.book(message.symbol)
        pending = list(book.buffer) if message.snapshot else []
        symbol, verdicts = books.apply(message)
        first = verdicts[0]
        if first.outcome is Outcome.BUFFERED:
            return self.hold(symbol, message, envelope)  # recorded once its snapshot decides
        return [Applied(symbol, first, message), *self.release(symbol, pending, verdicts[1:])]

    def book_update(
        self, part: Any, symbol: str, verdict: Verdict, envelope: Envelope, index: int
    ) -> BookUpdate:
        message: OkxBookMessage = part
        exchange_us = int(message.ts) * 1_000 if message.ts.isdigit() else None
        return BookUpdate(
            EXCHANGE, symbol, message.snapshot, message.bids, message.asks, exchange_us,
            message.seq_id, message.prev_seq_id, message.checksum, verdict, envelope, index,
        )  # fmt: skip

    async def resync(self, lane: Lane, symbols: Sequence[str]) -> None:
        session = lane.session
        if session is None:
            return
        await self._request(session, "unsubscribe", symbols)
        await self._request(session, "subscribe", symbols)
