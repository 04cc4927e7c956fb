"""Whether a local book still matches the exchange: the verdict on each book message, and the
state every exchange's rule shares.

An exchange's rule (``k2.exchanges.<exchange>.book``) applies the exchange's book messages to an
:class:`~k2.exchanges.book.OrderBook` and answers each with a :class:`Verdict`. A book is
*synced* from a snapshot until a message breaks the exchange's checksum or sequence; from then on
every verdict is unverified (:attr:`Reason.AWAITING_SNAPSHOT`) until a new snapshot (the resync)
is applied. The break itself carries its reason and, where they exist, the expected and received
numbers, so a gap event can say exactly what went wrong. Nothing here raises on exchange input: a
message that cannot be read is a :class:`BookMalformed` and makes its symbol's book unverified.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, NamedTuple, TypeVar

from k2.exchanges.base import Envelope, Malformed, ParsedFrame
from k2.exchanges.book import Level, OrderBook, read_level
from k2.exchanges.parse import reject


class Outcome(StrEnum):
    """What became of one book message."""

    VERIFIED = "verified"  # applied, and the book matches the exchange's checksum or sequence
    IGNORED = "ignored"  # already contained in the book (older than its snapshot); not applied
    BUFFERED = "buffered"  # held until a snapshot can place it (Binance, OKX)
    UNVERIFIED = "unverified"  # the book cannot be said to match the exchange (see the reason)


class Reason(StrEnum):
    """Why a book is not verified."""

    CHECKSUM_MISMATCH = (
        "checksum_mismatch"  # expected: the exchange's checksum, received: the book's
    )
    SEQUENCE_GAP = "sequence_gap"  # expected: the next number, received: the number that came
    SEQUENCE_RESET = "sequence_reset"  # the exchange restarted its sequence without a snapshot
    SNAPSHOT_TOO_OLD = "snapshot_too_old"  # the snapshot ends before the first update it kept
    UPDATE_BEFORE_SNAPSHOT = "update_before_snapshot"  # no snapshot yet to apply it to
    AWAITING_SNAPSHOT = "awaiting_snapshot"  # broken earlier, waiting for the resync snapshot
    UNCHECKABLE = "uncheckable"  # the message carries neither a checksum nor a sequence
    DISCONNECTED = "disconnected"  # the connection ended: what happened since is unknown
    RESTARTED = "restarted"  # the capture was not running: what happened meanwhile is unknown
    MALFORMED = "malformed"  # a book message of this symbol could not be read


@dataclass(frozen=True, slots=True)
class Verdict:
    """The verdict on one book message.

    ``sequence`` is the message's own number where the exchange has one (Binance ``u``, OKX
    ``seqId``, Bybit ``u``, Coinbase ``sequence_num``). For a break, ``expected`` and
    ``received`` are the two numbers that disagree: the sequence number due and the one that
    came, or the exchange's checksum and the book's.
    """

    outcome: Outcome
    reason: Reason | None = None
    sequence: int | None = None
    expected: int | None = None
    received: int | None = None
    detail: str = ""

    @property
    def verified(self) -> bool:
        """True when the book after this message is the exchange's book."""
        return self.outcome is Outcome.VERIFIED or self.outcome is Outcome.IGNORED


class BookUpdate(NamedTuple):
    """One book message of one symbol as the exchange sent it, and K2's verdict on it.

    ``sequence`` is the message's own number (Binance ``u``, OKX ``seqId``, Bybit ``u``,
    Coinbase ``sequence_num``) and ``sequence_from`` the one it follows on from (Binance ``U``,
    OKX ``prevSeqId``); ``checksum`` the exchange's checksum as sent. ``part`` orders the
    messages of one frame (a Coinbase frame may carry several products).
    """

    exchange: str
    native_symbol: str
    snapshot: bool
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    exchange_us: int | None
    sequence: int | None
    sequence_from: int | None
    checksum: int | None
    verdict: Verdict
    envelope: Envelope
    part: int = 0


@dataclass(frozen=True, slots=True)
class BookGap:
    """An interval in which K2's book of a symbol could not be said to be the exchange's: from
    the message that broke it (or the connection that ended) to the snapshot that verified it
    again (or the end of the run)."""

    exchange: str
    native_symbol: str
    from_us: int
    to_us: int
    reason: Reason
    detail: str = ""


class BookCoverage:
    """Which symbols' books are unverified since when: turns verdicts into :class:`BookGap` s.

    A symbol's first snapshot starts its coverage (before it there is no book, and nothing is
    missing); from then on the first verdict that is not verified opens an interval, and the
    next verified one closes it.
    """

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self._open: dict[str, tuple[int, Reason, str]] = {}  # symbol → (from µs, reason, detail)
        self._covered: set[str] = set()

    def observe(self, symbol: str, verdict: Verdict, at_us: int) -> BookGap | None:
        """The verdict on a message of ``symbol`` received at ``at_us``; the gap it closes."""
        if verdict.verified:
            self._covered.add(symbol)
            opened = self._open.pop(symbol, None)
            if opened is None:
                return None
            return BookGap(self.exchange, symbol, opened[0], at_us, opened[1], opened[2])
        if verdict.outcome is Outcome.BUFFERED or symbol not in self._covered:
            return None
        if symbol not in self._open:
            reason = verdict.reason or Reason.UNCHECKABLE
            self._open[symbol] = (at_us, reason, verdict.detail)
        return None

    def resume(self, symbol: str, since_us: int) -> None:
        """The capture starts again after its last record of ``symbol`` at ``since_us``: its
        book is unverified from then until the first snapshot of this run."""
        self._covered.add(symbol)
        self._open[symbol] = (since_us, Reason.RESTARTED, "")

    def unverified(self) -> dict[str, int]:
        """The symbols whose books are unverified now, with when that began (µs)."""
        return {symbol: opened[0] for symbol, opened in self._open.items()}

    def close_all(self, at_us: int) -> list[BookGap]:
        """The run ends: every open interval ends at ``at_us``."""
        gaps = [
            BookGap(self.exchange, symbol, since, at_us, reason, detail)
            for symbol, (since, reason, detail) in self._open.items()
        ]
        self._open.clear()
        return gaps


@dataclass(frozen=True, slots=True)
class BookMalformed:
    """A book message that could not be read: why, and its symbol when that much was legible."""

    error: str
    symbol: str | None = None


def unattributed(malformed: BookMalformed) -> Verdict:
    """The verdict on a malformed message whose symbol could not be read (no book is marked)."""
    return Verdict(Outcome.UNVERIFIED, Reason.MALFORMED, detail=malformed.error)


class SyncedBook:
    """One symbol's book and whether it is in sync with the exchange; each exchange's rule extends
    it."""

    def __init__(self, symbol: str, depth: int | None = None) -> None:
        self.symbol = symbol
        self.book = OrderBook(depth)
        self.has_snapshot = False  # a snapshot was applied at least once
        self.synced = False  # a snapshot was applied and nothing broke since
        self.broken_by: Verdict | None = None  # the verdict that last broke the sync
        self.verified_messages = 0  # messages (snapshots included) verified since creation

    def verified(self, sequence: int | None = None) -> Verdict:
        """The book matches the exchange after a message."""
        self.verified_messages += 1
        return Verdict(Outcome.VERIFIED, sequence=sequence)

    def break_sync(
        self,
        reason: Reason,
        *,
        sequence: int | None = None,
        expected: int | None = None,
        received: int | None = None,
        detail: str = "",
    ) -> Verdict:
        """The book stops being verified for ``reason`` (a snapshot makes it verified again)."""
        verdict = Verdict(Outcome.UNVERIFIED, reason, sequence, expected, received, detail)
        if self.synced:
            self.broken_by = verdict
        self.synced = False
        return verdict

    def unsynced(self, sequence: int | None = None) -> Verdict:
        """The verdict on an update that arrives while the book is not synced."""
        reason = Reason.AWAITING_SNAPSHOT if self.has_snapshot else Reason.UPDATE_BEFORE_SNAPSHOT
        return Verdict(Outcome.UNVERIFIED, reason, sequence)

    def malformed(self, error: str) -> Verdict:
        """A message of this symbol could not be read: the book can no longer be trusted."""
        return self.break_sync(Reason.MALFORMED, detail=error)

    def disconnected(self) -> Verdict:
        """The connection ended; the book waits for the snapshot of the next subscription."""
        return self.break_sync(Reason.DISCONNECTED)

    def start_sync(self) -> None:
        """A snapshot was applied: the book is in sync again."""
        self.has_snapshot = True
        self.synced = True


B = TypeVar("B", bound=SyncedBook)


class Books(Generic[B]):
    """Every symbol's book on one connection; an exchange's class adds how a message is applied."""

    def __init__(self, make: Callable[[str], B]) -> None:
        self._make = make
        self.books: dict[str, B] = {}

    def book(self, symbol: str) -> B:
        """The book of ``symbol`` as the exchange spells it (created empty on first use)."""
        found = self.books.get(symbol)
        if found is None:
            found = self.books[symbol] = self._make(symbol)
        return found

    def malformed(self, read: BookMalformed) -> tuple[str | None, Verdict]:
        """A message that could not be read makes its symbol's book unverified (when the
        symbol was legible)."""
        if read.symbol is None:
            return None, unattributed(read)
        return read.symbol, self.book(read.symbol).malformed(read.error)

    def disconnected(self) -> list[tuple[str, Verdict]]:
        """The connection ended: every book waits for the next subscription's snapshot."""
        return [(symbol, book.disconnected()) for symbol, book in self.books.items()]


def read_levels(rows: object, what: str, lengths: Container[int]) -> tuple[Level, ...]:
    """An exchange's array of levels, each an array starting with price and size text whose length
    is one of ``lengths``; refuses (:func:`~k2.exchanges.parse.reject`) anything else."""
    if not isinstance(rows, list):
        reject(f"{what} is not an array")
    levels = []
    for row in rows:
        if not isinstance(row, list) or len(row) not in lengths:
            reject(f"{what} level is not an array of price, size and what follows them")
        level = read_level(row[0], row[1])
        if level is None:
            reject(f"{what} level price {row[0]!r} or size {row[1]!r} is not decimal text")
        levels.append(level)
    return tuple(levels)


def with_dead_letter(
    parsed: ParsedFrame, text: str, envelope: Envelope, max_chars: int
) -> ParsedFrame:
    """A book frame whose message could not be read is also a dead letter: its text and why
    (the message itself still makes its symbol's book unverified)."""
    if parsed.malformed is not None:
        return parsed
    for message in parsed.books:
        if isinstance(message, BookMalformed):
            dead = Malformed(text[:max_chars], message.error, envelope)
            return parsed._replace(malformed=dead)
    return parsed
