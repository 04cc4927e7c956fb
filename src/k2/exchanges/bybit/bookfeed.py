"""Bybit's book feed: ``orderbook.<depth>.<symbol>`` on the spot public endpoint, verified by the
continuity of Bybit's update id ``u`` (:mod:`k2.exchanges.bybit.book`); a broken book is resynced
by unsubscribing its topic and subscribing it again, which starts with a snapshot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from k2.exchanges.base import Envelope, ParsedFrame, Silence
from k2.exchanges.bookfeed import BookFeed
from k2.exchanges.booksync import BookUpdate, Verdict
from k2.exchanges.bybit import EXCHANGE, wire
from k2.exchanges.bybit.book import BybitBookMessage, BybitBooks, parse_book_frame
from k2.exchanges.bybit.client import BybitFeedClient, BybitFeedOptions
from k2.exchanges.feed import Lane, NewestId


class BybitBookFeed(BookFeed, BybitFeedClient):
    """Every configured symbol's book on Bybit spot, as :class:`BookUpdate` events."""

    cuts_to_depth = True

    def __init__(
        self,
        options: BybitFeedOptions,
        on_silence: Callable[[Silence], None] | None = None,
        newest_id: NewestId | None = None,
    ) -> None:
        super().__init__(options, on_silence, None)  # books have no trade history to check
        self.depth = self.topic_depth = options.book_depth

    def topic(self, symbol: str) -> str:
        return wire.book_topic(self.topic_depth, symbol)

    def parse(self, text: str, envelope: Envelope) -> ParsedFrame:
        return parse_book_frame(text, envelope, self.options.max_frame_chars)

    def new_books(self, lane: Lane) -> BybitBooks:
        return BybitBooks()

    def book_update(
        self, part: Any, symbol: str, verdict: Verdict, envelope: Envelope, index: int
    ) -> BookUpdate:
        message: BybitBookMessage = part
        return BookUpdate(
            EXCHANGE,
            symbol,
            message.snapshot,
            message.bids,
            message.asks,
            message.ts * 1_000,
            message.update_id,
            None,
            None,
            verdict,
            envelope,
            index,
        )

    async def resync(self, lane: Lane, symbols: Sequence[str]) -> None:
        session = lane.session
        if session is None:
            return
        await self._request(session, "unsubscribe", symbols)
        await self._request(session, "subscribe", symbols)
