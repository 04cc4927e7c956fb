"""Bybit v5's L2 book (``orderbook.<depth>.<symbol>``) and its update id check.

The rule (docs/book-protocols.md, Bybit): a ``snapshot`` replaces the book (on subscribing, on
resubscribing, when Bybit re-sends one after a problem on its side, and every 3 s of no change
at depth 1, with the same ``u``); each ``delta`` must carry the update id ``u`` one above the
book's. ``u`` = 1 means Bybit's service restarted: it comes as a snapshot, which simply replaces
the book; a delta numbered 1 on a book numbered above it is a reset the book cannot follow
(:attr:`Reason.SEQUENCE_RESET`). Any other jump, back or forward, is a gap. The book is cut to
the subscribed depth after each message. After a break, deltas are still applied (best effort,
unverified) until the next snapshot. The readers take decoded JSON and never raise.
"""

from __future__ import annotations

from dataclasses import dataclass

from k2.errors import MalformedFrameError
from k2.exchanges.base import LONG_MAX, Envelope, ParsedFrame
from k2.exchanges.book import Level
from k2.exchanges.booksync import (
    BookMalformed,
    Books,
    Reason,
    SyncedBook,
    Verdict,
    read_levels,
    with_dead_letter,
)
from k2.exchanges.bybit.parse import read_message as read_other
from k2.exchanges.bybit.wire import BOOK_TOPIC_PREFIX
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS, parse_with, reject

TOPIC_PREFIX = BOOK_TOPIC_PREFIX
RESTART_UPDATE_ID = 1
_LEVEL = (2,)  # [price, size]


@dataclass(frozen=True, slots=True)
class BybitBookMessage:
    """One ``orderbook`` message of one symbol."""

    symbol: str
    depth: int  # from the topic: orderbook.<depth>.<symbol>
    snapshot: bool
    update_id: int  # u
    cross_seq: int | None  # seq (options have none)
    ts: int  # ms, when Bybit produced the data
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


class BybitBook(SyncedBook):
    """One symbol's book, verified by the continuity of Bybit's update id."""

    def __init__(self, symbol: str, depth: int | None = None) -> None:
        super().__init__(symbol, depth)
        self.update_id: int | None = None

    def apply(self, message: BybitBookMessage) -> Verdict:
        """Apply one message; the verdict says whether the book still matches Bybit's."""
        book = self.book
        book.depth = message.depth
        u = message.update_id
        if message.snapshot:
            book.replace(message.bids, message.asks)
            self.update_id = u
            self.start_sync()
            return self.verified(u)
        if not self.has_snapshot or self.update_id is None:
            return self.unsynced(u)
        expected = self.update_id + 1
        book.update(message.bids, message.asks)
        self.update_id = u
        if not self.synced:
            return self.unsynced(u)
        if u == expected:
            return self.verified(u)
        reason = Reason.SEQUENCE_RESET if u == RESTART_UPDATE_ID else Reason.SEQUENCE_GAP
        return self.break_sync(reason, sequence=u, expected=expected, received=u)


class BybitBooks(Books[BybitBook]):
    """Every symbol's book on one connection."""

    def __init__(self) -> None:
        super().__init__(BybitBook)

    def apply(self, read: BybitBookMessage | BookMalformed) -> tuple[str | None, Verdict]:
        """Apply what :func:`read_message` read: the symbol and the verdict."""
        if isinstance(read, BookMalformed):
            return self.malformed(read)
        return read.symbol, self.book(read.symbol).apply(read)


def parse_book_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """One frame of a book feed: its ``orderbook`` message, or what any other frame holds
    (acks, pongs, errors) as the trade parser reads it."""
    parsed = parse_with(text, envelope, max_chars, None, _book_or_other)
    return with_dead_letter(parsed, text, envelope, max_chars)


def _book_or_other(data: object, envelope: Envelope) -> ParsedFrame:
    topic = data.get("topic") if isinstance(data, dict) else None
    if isinstance(topic, str) and topic.startswith(TOPIC_PREFIX):
        return ParsedFrame(books=(read_message(data),))
    return read_other(data, envelope)


def read_message(data: object) -> BybitBookMessage | BookMalformed:
    """An ``orderbook.<depth>.<symbol>`` message, or why not."""
    symbol = _topic_symbol(data)
    try:
        return _message(data)
    except MalformedFrameError as exc:
        return BookMalformed(str(exc), symbol)


def _topic_symbol(data: object) -> str | None:
    topic = data.get("topic") if isinstance(data, dict) else None
    if isinstance(topic, str) and topic.startswith(TOPIC_PREFIX) and topic.count(".") == 2:
        return topic.rsplit(".", 1)[1] or None
    return None


def _message(data: object) -> BybitBookMessage:
    if not isinstance(data, dict):
        reject("not an object")
    topic = data.get("topic")
    if not isinstance(topic, str) or not topic.startswith(TOPIC_PREFIX) or topic.count(".") != 2:
        reject(f"topic {topic!r} is not orderbook.<depth>.<symbol>")
    _, depth_text, symbol = topic.split(".")
    if not (depth_text.isascii() and depth_text.isdigit()) or int(depth_text) < 1:
        reject(f"topic {topic!r} names no depth")
    kind = data.get("type")
    if kind not in ("snapshot", "delta"):
        reject(f"orderbook type {kind!r} is neither snapshot nor delta")
    body = data.get("data")
    if not isinstance(body, dict) or body.get("s") != symbol:
        reject("orderbook data is not an object of the topic's symbol")
    ts = _integer(data, "ts")
    update_id = _integer(body, "u")
    cross_seq = _integer(body, "seq") if "seq" in body else None
    bids = read_levels(body.get("b"), "orderbook b", _LEVEL)
    asks = read_levels(body.get("a"), "orderbook a", _LEVEL)
    depth, snapshot = int(depth_text), kind == "snapshot"
    return BybitBookMessage(symbol, depth, snapshot, update_id, cross_seq, ts, bids, asks)


def _integer(data: dict[str, object], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= LONG_MAX:
        reject(f"{name} {value!r} is not a non-negative 64-bit integer")
    return value
