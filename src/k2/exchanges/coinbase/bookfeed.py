"""Coinbase's book feed: the ``level2`` channel (messages ``l2_data``, a snapshot of each product
then its updates), verified by ``sequence_num``, which counts every message of the connection
across channels (:mod:`k2.exchanges.coinbase.book`): a jump means messages were lost and every
book of the connection is broken. A broken book is resynced by unsubscribing its product from
``level2`` and subscribing it again, which starts with a snapshot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from k2.errors import TradeInvalidError
from k2.exchanges.base import Envelope, ParsedFrame, Silence
from k2.exchanges.bookfeed import Applied, BookFeed
from k2.exchanges.booksync import BookUpdate, Verdict
from k2.exchanges.coinbase import EXCHANGE, wire
from k2.exchanges.coinbase.book import CoinbaseBooks, L2Event, L2Message, parse_book_frame
from k2.exchanges.coinbase.client import CoinbaseFeedClient, CoinbaseFeedOptions
from k2.exchanges.feed import Lane, NewestId
from k2.exchanges.values import rfc3339_micros

PROTOCOL = "coinbase-level2"


class CoinbaseBookFeed(BookFeed, CoinbaseFeedClient):
    """Every configured product's book on Coinbase, as :class:`BookUpdate` events."""

    channel = wire.LEVEL2
    protocol = PROTOCOL

    def __init__(
        self,
        options: CoinbaseFeedOptions,
        on_silence: Callable[[Silence], None] | None = None,
        newest_id: NewestId | None = None,
    ) -> None:
        super().__init__(options, on_silence, None)  # books have no trade history to check
        self.depth = options.book_depth

    def parse(self, text: str, envelope: Envelope) -> ParsedFrame:
        return parse_book_frame(text, envelope, self.options.max_frame_chars)

    def new_books(self, lane: Lane) -> CoinbaseBooks:
        return CoinbaseBooks()

    def apply(self, books: Any, message: Any, envelope: Envelope) -> list[Applied]:
        results = books.apply(message)
        if not isinstance(message, L2Message):  # a sequence mark, or a malformed message
            return [Applied(symbol, verdict) for symbol, verdict in results]
        breaks = len(results) - len(message.events)  # those a sequence gap caused come first
        parts = [None] * breaks + [(message, event) for event in message.events]
        return [
            Applied(symbol, verdict, part)
            for (symbol, verdict), part in zip(results, parts, strict=True)
        ]

    def book_update(
        self, part: Any, symbol: str, verdict: Verdict, envelope: Envelope, index: int
    ) -> BookUpdate:
        message, event = part
        assert isinstance(message, L2Message) and isinstance(event, L2Event)
        try:
            exchange_us: int | None = rfc3339_micros(message.timestamp, "l2_data timestamp")
        except TradeInvalidError:
            exchange_us = None
        return BookUpdate(
            EXCHANGE, symbol, event.snapshot, event.bids, event.asks, exchange_us,
            message.sequence, None, None, verdict, envelope, index,
        )  # fmt: skip

    async def resync(self, lane: Lane, symbols: Sequence[str]) -> None:
        conn = lane.conn
        if conn is None:
            return
        await self._send(conn, wire.unsubscribe(self.channel, symbols))
        await self._send(conn, wire.subscribe(self.channel, symbols))
