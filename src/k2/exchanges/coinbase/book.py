"""Coinbase Advanced Trade's L2 book (``level2``, received as ``l2_data``) and its sequence check.

The rule (docs/book-protocols.md, Coinbase): an ``l2_data`` message holds events, each a
``snapshot`` (the product's whole book) or an ``update`` of levels (``new_quantity`` is the
level's new size, not a change; ``"0"`` removes it). Coinbase numbers the messages of a
connection with ``sequence_num``, one counter across every channel and product on it, so the
check belongs to the connection, not to a book: every message the connection receives, of any
channel, must be numbered one above the one before. A jump (or a step back) means a message was
lost, and since it cannot be known which product's it was, every book of the connection becomes
unverified until its product's next snapshot (a resubscription). The readers take decoded JSON
and never raise.
"""

from __future__ import annotations

from dataclasses import dataclass

from k2.errors import MalformedFrameError
from k2.exchanges.base import LONG_MAX, Envelope, ParsedFrame
from k2.exchanges.book import Level, Side, read_level
from k2.exchanges.booksync import (
    BookMalformed,
    Books,
    Reason,
    SyncedBook,
    Verdict,
    with_dead_letter,
)
from k2.exchanges.coinbase.parse import read_message
from k2.exchanges.coinbase.wire import L2_DATA, L2_SIDES, LEVEL2
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS, parse_with, reject

CHANNEL = LEVEL2  # what the subscription names
DATA_CHANNEL = L2_DATA  # what the messages carry
_SIDES = {L2_SIDES[True]: Side.BID, L2_SIDES[False]: Side.ASK}


@dataclass(frozen=True, slots=True)
class SequenceMark:
    """The ``sequence_num`` of a message of another channel (heartbeats, subscriptions): the
    connection's count goes through every channel, so each message is counted."""

    sequence: int


@dataclass(frozen=True, slots=True)
class L2Event:
    """One event of an ``l2_data`` message: one product's snapshot or update."""

    product_id: str
    snapshot: bool
    bids: tuple[Level, ...]  # each side in the order sent
    asks: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class L2Message:
    """One ``l2_data`` message."""

    sequence: int  # sequence_num: the connection's message counter
    timestamp: str
    events: tuple[L2Event, ...]


class CoinbaseBook(SyncedBook):
    """One product's book; its sequence is checked by :class:`CoinbaseBooks`."""

    def apply(self, event: L2Event, sequence: int) -> Verdict:
        """Apply one event of a message numbered ``sequence`` already checked in order."""
        if event.snapshot:
            self.book.replace(event.bids, event.asks)
            self.start_sync()
            return self.verified(sequence)
        if not self.has_snapshot:
            return self.unsynced(sequence)
        self.book.update(event.bids, event.asks)
        return self.verified(sequence) if self.synced else self.unsynced(sequence)


class CoinbaseBooks(Books[CoinbaseBook]):
    """Every product's book on one connection, and the connection's ``sequence_num``."""

    def __init__(self) -> None:
        super().__init__(CoinbaseBook)
        self.last_sequence: int | None = None

    def observe(self, sequence: int) -> list[tuple[str, Verdict]]:
        """Note a message of any channel numbered ``sequence``; on a gap, the break of every
        book (their verdicts)."""
        last, self.last_sequence = self.last_sequence, sequence
        if last is None or sequence == last + 1:
            return []
        detail = "sequence_num went back" if sequence <= last else ""
        return [
            (
                product_id,
                book.break_sync(
                    Reason.SEQUENCE_GAP,
                    sequence=sequence,
                    expected=last + 1,
                    received=sequence,
                    detail=detail,
                ),
            )
            for product_id, book in self.books.items()
            if book.synced
        ]

    def apply(
        self, read: L2Message | SequenceMark | BookMalformed
    ) -> list[tuple[str | None, Verdict]]:
        """Apply what :func:`read_l2` read: the breaks a sequence gap caused, then one verdict
        per event (for a message of another channel, only the breaks)."""
        if isinstance(read, BookMalformed):
            return [self.malformed(read)]
        if isinstance(read, SequenceMark):
            return list(self.observe(read.sequence))
        verdicts: list[tuple[str | None, Verdict]] = list(self.observe(read.sequence))
        for event in read.events:
            verdict = self.book(event.product_id).apply(event, read.sequence)
            verdicts.append((event.product_id, verdict))
        return verdicts

    def disconnected(self) -> list[tuple[str, Verdict]]:
        """The connection ended: the next one numbers from its own start, and every book waits
        for its snapshot."""
        self.last_sequence = None
        return super().disconnected()


def parse_book_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """One message of a book feed: its ``l2_data``, or what any other message holds
    (subscriptions, heartbeats, errors) as the trade parser reads it with its ``sequence_num``
    as a :class:`SequenceMark`."""
    parsed = parse_with(text, envelope, max_chars, None, _book_or_other)
    return with_dead_letter(parsed, text, envelope, max_chars)


def _book_or_other(data: object, envelope: Envelope) -> ParsedFrame:
    if isinstance(data, dict) and data.get("channel") == DATA_CHANNEL:
        return ParsedFrame(books=(read_l2(data),))
    parsed = read_message(data, envelope)
    sequence = read_sequence(data)
    return parsed if sequence is None else parsed._replace(books=(SequenceMark(sequence),))


def read_sequence(data: object) -> int | None:
    """The ``sequence_num`` of any message of the connection, or None when it has none."""
    value = data.get("sequence_num") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= LONG_MAX:
        return None
    return value


def read_l2(data: object) -> L2Message | BookMalformed:
    """An ``l2_data`` message, or why not (with the product when it names exactly one)."""
    try:
        return _l2(data)
    except MalformedFrameError as exc:
        return BookMalformed(str(exc), _only_product(data))


def _only_product(data: object) -> str | None:
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list):
        return None
    # the events' products (any JSON value: a set of them could hold unhashable lists)
    found = [event.get("product_id") for event in events if isinstance(event, dict)]
    if found and isinstance(found[0], str) and all(product == found[0] for product in found):
        return found[0]
    return None


def _l2(data: object) -> L2Message:
    if not isinstance(data, dict) or data.get("channel") != DATA_CHANNEL:
        reject("not an l2_data message")
    sequence = read_sequence(data)
    if sequence is None:
        reject("l2_data message without a sequence_num")
    timestamp = data.get("timestamp")
    if not isinstance(timestamp, str):
        reject("l2_data message without a timestamp")
    events = data.get("events")
    if not isinstance(events, list):
        reject("l2_data events are not an array")
    return L2Message(sequence, timestamp, tuple(_event(event) for event in events))


def _event(event: object) -> L2Event:
    if not isinstance(event, dict):
        reject("l2_data event is not an object")
    kind, product_id = event.get("type"), event.get("product_id")
    if kind not in ("snapshot", "update"):
        reject(f"l2_data event type {kind!r} is neither snapshot nor update")
    if not isinstance(product_id, str):
        reject("l2_data event without a product_id")
    updates = event.get("updates")
    if not isinstance(updates, list):
        reject("l2_data event updates are not an array")
    changes = [_change(update) for update in updates]
    bids = tuple(level for side, level in changes if side is Side.BID)
    asks = tuple(level for side, level in changes if side is Side.ASK)
    return L2Event(product_id, kind == "snapshot", bids, asks)


def _change(update: object) -> tuple[Side, Level]:
    if not isinstance(update, dict):
        reject("l2_data update is not an object")
    side = _SIDES.get(str(update.get("side")))
    if side is None:
        reject(f"l2_data update side {update.get('side')!r} is neither bid nor offer")
    level = read_level(update.get("price_level"), update.get("new_quantity"))
    if level is None:
        reject(f"l2_data update {update!r} has no decimal price_level and new_quantity")
    return side, level
