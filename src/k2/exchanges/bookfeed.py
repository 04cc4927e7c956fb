"""What every exchange's book feed shares: books per lane, verdicts, coverage and resyncs.

A book feed is an exchange's feed client (the same connections, reconnects, reference data and
controls as its trades) that subscribes the exchange's book channel instead. Its frames are read
by the exchange's book reader (``k2.exchanges.<exchange>.book``) into messages, which
:meth:`BookFeed.accept_books` applies, in order, to the books of the lane that received them:
each message becomes a :class:`~k2.exchanges.booksync.BookUpdate` carrying the verdict, and an
interval in which a book was unverified becomes a :class:`~k2.exchanges.booksync.BookGap` when
a snapshot verifies it again. A message that breaks a book (a checksum mismatch, a sequence
break, a malformed message) asks for that symbol's resync, which the exchange's session sends
paced, several symbols a request where the exchange allows it; each kind of break is logged at
WARNING once, then at DEBUG, and counted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import structlog

from k2.exchanges.base import Envelope, FeedEvent
from k2.exchanges.booksync import (
    BookCoverage,
    BookMalformed,
    BookUpdate,
    Outcome,
    Reason,
    Verdict,
)
from k2.exchanges.feed import FeedClientBase, Lane

log = structlog.get_logger(__name__)

# Verdicts that follow a break without being one: the book already waits for its resync.
_WAITING = frozenset({Reason.AWAITING_SNAPSHOT, Reason.UPDATE_BEFORE_SNAPSHOT})
_WAITING_VERDICT = Verdict(Outcome.UNVERIFIED, Reason.AWAITING_SNAPSHOT)
HELD_LIMIT = 10_000  # messages held per symbol while its snapshot is awaited


class Applied(NamedTuple):
    """What became of one message (or one part of it): its symbol and verdict, the message
    :meth:`BookFeed.book_update` records (None: nothing to record, for a malformed message or
    one recorded already), and where it was received when not in the frame being read (a held
    message a snapshot decided)."""

    symbol: str | None
    verdict: Verdict
    message: Any = None
    received: Envelope | None = None


def breaks(verdict: Verdict) -> bool:
    """Whether the verdict is a new break of a book (and asks for a resync)."""
    return verdict.outcome is Outcome.UNVERIFIED and verdict.reason not in _WAITING


class BookFeed(FeedClientBase):
    """An exchange's book feed: the exchange's client with :meth:`new_books`,
    :meth:`book_update` and :meth:`resync` of its own (mixed in before the trade client)."""

    depth: int | None  # levels a side; None where the exchange sends the whole book
    # The exchange sends no removal for a level pushed out of the subscribed depth, so the book
    # is cut to ``depth`` after each message.
    cuts_to_depth: ClassVar[bool] = False

    resync_interval_s: ClassVar[float] = 1.0  # at most one resync request a second per lane

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.coverage = BookCoverage(self.exchange)
        # "messages:<outcome>" per message (part), "breaks:<reason>", "resyncs"
        self.book_stats: dict[str, int] = {"resyncs": 0}
        self._lane_books: dict[int, Any] = {}  # lane → its Books
        self._resync_due: dict[int, dict[str, float]] = {}  # lane → symbol → when asked
        self._breaks_warned: set[str] = set()
        self._last_resync: dict[int, float] = {}  # lane → when it last sent a resync
        # symbol → the messages held for a snapshot, by identity: (message, its envelope)
        self._held: dict[str, dict[int, tuple[Any, Envelope]]] = {}

    @property
    def cut_depth(self) -> int | None:
        """The levels a side every book is cut to after each message, or None."""
        return self.depth if self.cuts_to_depth else None

    # --- what an exchange's book feed implements -----------------------------------------

    def new_books(self, lane: Lane) -> Any:
        """The books of one lane (a :class:`~k2.exchanges.booksync.Books`), kept across its
        reconnects."""
        raise NotImplementedError

    def apply(self, books: Any, message: Any, envelope: Envelope) -> list[Applied]:
        """One message read by the exchange's reader applied to the lane's books: what became
        of each part of it (a product of a Coinbase message; most messages are one part), and of
        the held messages a snapshot decided."""
        symbol, verdict = books.apply(message)
        return [Applied(symbol, verdict, None if isinstance(message, BookMalformed) else message)]

    def book_update(
        self, part: Any, symbol: str, verdict: Verdict, envelope: Envelope, index: int
    ) -> BookUpdate:
        """The :class:`BookUpdate` of one part of a message."""
        raise NotImplementedError

    async def resync(self, lane: Lane, symbols: Sequence[str]) -> None:
        """Get ``symbols``' books back in sync on the lane's open connection (a new snapshot)."""
        raise NotImplementedError

    # --- the shared part ------------------------------------------------------------------

    def books_of(self, lane: Lane) -> Any:
        found = self._lane_books.get(lane.index)
        if found is None:
            found = self._lane_books[lane.index] = self.new_books(lane)
        return found

    def accept_books(self, lane: Lane, books: Sequence[Any], envelope: Envelope) -> list[FeedEvent]:
        events: list[FeedEvent] = []
        lane_books = self.books_of(lane)
        for message in books:
            events.extend(self.decided(lane, self.apply(lane_books, message, envelope), envelope))
        return events

    def decided(
        self, lane: Lane, outcomes: Sequence[Applied], envelope: Envelope
    ) -> list[FeedEvent]:
        """The events of what became of messages (``envelope``: where they were received, but
        for held ones): their records, the gaps they close, the resyncs they ask for."""
        events: list[FeedEvent] = []
        stats = self.book_stats
        part = 0
        for symbol, verdict, message, received in outcomes:
            key = f"messages:{verdict.outcome}"
            stats[key] = stats.get(key, 0) + 1
            if symbol is None:
                self._note_break(None, verdict)  # unattributed: no book to resync
                continue
            self._silence.seen(symbol)
            if message is not None:
                if received is None:
                    events.append(self.book_update(message, symbol, verdict, envelope, part))
                    part += 1
                else:
                    events.append(self.book_update(message, symbol, verdict, received, 0))
            events.extend(self.observe(lane, symbol, verdict, envelope.received_us))
        return events

    # --- messages held back until a snapshot decides them (Binance, OKX) -------------------

    def hold(self, symbol: str, message: Any, envelope: Envelope) -> list[Applied]:
        """Keep ``message`` (received in ``envelope``) until a snapshot decides it; a symbol
        holds at most :data:`HELD_LIMIT`, and the oldest beyond that is recorded at once as
        unverified (its book's buffer dropped it too)."""
        held = self._held.setdefault(symbol, {})
        held[id(message)] = (message, envelope)
        if len(held) <= HELD_LIMIT:
            return []
        message, received = held.pop(next(iter(held)))
        return [Applied(symbol, _WAITING_VERDICT, message, received)]

    def release(
        self, symbol: str, pending: Sequence[Any], verdicts: Sequence[Verdict]
    ) -> list[Applied]:
        """What a snapshot decided of the messages its book had buffered (``pending``, in order,
        with a verdict each): the held ones become records with the envelope they came in;
        those recorded already (a break's message) only count; those buffered again stay held."""
        held = self._held.get(symbol, {})
        outcomes = []
        for message, verdict in zip(pending, verdicts, strict=False):
            if verdict.outcome is Outcome.BUFFERED:
                continue
            found = held.pop(id(message), None)
            if found is None:
                outcomes.append(Applied(symbol, verdict))
            else:
                outcomes.append(Applied(symbol, verdict, found[0], found[1]))
        return outcomes

    def lane_ended(self, lane: Lane) -> list[FeedEvent]:
        """Every book of the lane is unverified from now until its next snapshot."""
        now_us = time.time_ns() // 1_000
        for symbol, verdict in self.books_of(lane).disconnected():
            self.coverage.observe(symbol, verdict, now_us)
        self._resync_due.pop(lane.index, None)  # the new connection's subscription resyncs
        return []

    def held(self) -> list[FeedEvent]:
        """Every message still held back (the capture stops), recorded as unverified."""
        events: list[FeedEvent] = [
            self.book_update(message, symbol, _WAITING_VERDICT, received, 0)
            for symbol, held in self._held.items()
            for message, received in held.values()
        ]
        self._held.clear()
        return events

    def observe(self, lane: Lane, symbol: str, verdict: Verdict, at_us: int) -> list[FeedEvent]:
        """A verdict on ``symbol``'s book at ``at_us``: the gap it closes, and the resync a
        break asks for."""
        if breaks(verdict):
            self._note_break(symbol, verdict)
            self._resync_due.setdefault(lane.index, {}).setdefault(symbol, time.monotonic())
        gap = self.coverage.observe(symbol, verdict, at_us)
        return [] if gap is None else [gap]

    def resyncs_due(self, lane: Lane) -> list[str]:
        """The symbols of ``lane`` waiting for a resync request, oldest first; taken."""
        due = self._resync_due.pop(lane.index, {})
        return [symbol for symbol, _ in sorted(due.items(), key=lambda item: item[1])]

    async def on_tick(self, lane: Lane) -> None:
        """Send the lane's due resyncs, one request at most every :attr:`resync_interval_s`."""
        now = time.monotonic()
        if now - self._last_resync.get(lane.index, 0.0) < self.resync_interval_s:
            return
        symbols = [symbol for symbol in self.resyncs_due(lane) if symbol in lane.symbols]
        if symbols:
            self._last_resync[lane.index] = now
            self.book_stats["resyncs"] += len(symbols)
            log.debug("book_resync_requested", exchange=self.exchange, symbols=len(symbols))
            await self.resync(lane, symbols)

    def _note_break(self, symbol: str | None, verdict: Verdict) -> None:
        reason = str(verdict.reason)
        key = f"breaks:{reason}"
        self.book_stats[key] = self.book_stats.get(key, 0) + 1
        first = reason not in self._breaks_warned
        self._breaks_warned.add(reason)
        (log.warning if first else log.debug)(
            "book_unverified",
            exchange=self.exchange,
            symbol=symbol,
            reason=reason,
            expected=verdict.expected,
            received=verdict.received,
            detail=verdict.detail or None,
        )
