"""Kraken's book feed: the ``book`` channel (v2, or v1) at the configured depth, verified against
Kraken's CRC32 after every message (:mod:`k2.exchanges.kraken.book`), a broken book resynced by
unsubscribing and subscribing its pair again (the new subscription starts with a snapshot)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from k2.exchanges.base import Envelope, ParsedFrame, Silence
from k2.exchanges.bookfeed import BookFeed
from k2.exchanges.booksync import BookUpdate, Verdict
from k2.exchanges.feed import Lane, NewestId
from k2.exchanges.kraken import EXCHANGE
from k2.exchanges.kraken.book import KrakenBookMessage, KrakenBooks, parse_book_frame
from k2.exchanges.kraken.client import KrakenFeedClient, KrakenFeedOptions


class KrakenBookFeed(BookFeed, KrakenFeedClient):
    """Every configured pair's book on Kraken, as :class:`BookUpdate` events."""

    channel = "book"
    cuts_to_depth = True

    def __init__(
        self,
        options: KrakenFeedOptions,
        on_silence: Callable[[Silence], None] | None = None,
        newest_id: NewestId | None = None,
    ) -> None:
        super().__init__(options, on_silence, None)  # books have no trade history to check
        self.depth = options.book_depth

    def channel_depth(self) -> int | None:
        return self.depth

    def parse(self, text: str, envelope: Envelope) -> ParsedFrame:
        return parse_book_frame(text, envelope, self.options.max_frame_chars)

    def new_books(self, lane: Lane) -> KrakenBooks:
        return KrakenBooks(self.depth)

    def book_update(
        self, part: Any, symbol: str, verdict: Verdict, envelope: Envelope, index: int
    ) -> BookUpdate:
        message = part
        assert isinstance(message, KrakenBookMessage)
        return BookUpdate(
            EXCHANGE,
            symbol,
            message.snapshot,
            message.bids,
            message.asks,
            message.exchange_us,
            None,
            None,
            message.checksum,
            verdict,
            envelope,
            index,
        )

    async def resync(self, lane: Lane, symbols: Sequence[str]) -> None:
        await self.resubscribe(lane, symbols)
