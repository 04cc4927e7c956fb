"""OKX's book feed holds updates that come before their snapshot and records each once the
snapshot decides it, with the envelope it came in."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from k2.exchanges.base import Envelope, SequenceTracker
from k2.exchanges.book import Level, OrderBook
from k2.exchanges.booksync import BookUpdate, Outcome
from k2.exchanges.feed import Lane
from k2.exchanges.okx import wire
from k2.exchanges.okx.book import checksum
from k2.exchanges.okx.bookfeed import OkxBookFeed
from k2.exchanges.okx.client import OkxFeedOptions
from k2.transport.ws import Backoff

INST = "BTC-USDT"
Rows = list[tuple[str, str]]


def levels(rows: Rows) -> list[Level]:
    return [Level(Decimal(price), Decimal(size), price, size) for price, size in rows]


def push(action: str, bids: Rows, asks: Rows, book: OrderBook, seq: int, prev: int) -> str:
    """A ``books`` push whose checksum is that of ``book`` (the book once it is applied)."""
    value = checksum(*book.top(25))
    rows = [(p, s, "0", "1") for p, s in bids], [(p, s, "0", "1") for p, s in asks]
    return wire.render_books(action, INST, rows[0], rows[1], 1_796_637_600_000, value, seq, prev)  # type: ignore[arg-type]


def test_updates_before_the_snapshot_are_recorded_once_it_decides_them() -> None:
    """An update the snapshot already holds is recorded as ignored, one that follows it as
    verified, each with the envelope it was received in and after the snapshot's record."""
    feed = OkxBookFeed(OkxFeedOptions(symbols=(INST,), ws_url="ws://127.0.0.1:9/ws/v5/business"))
    lane = Lane(0, [INST], SequenceTracker("okx"), Backoff())
    snapshot_book, after = OrderBook(), OrderBook()
    snapshot_book.replace(levels([("100", "1")]), levels([("101", "2")]))
    after.replace(levels([("100", "3")]), levels([("101", "2")]))
    frames = [
        push("update", [("99", "5")], [], OrderBook(), 9, 8),  # held, then ignored (9 <= 10)
        push("update", [("100", "3")], [], after, 11, 10),  # held, then applied and verified
        push("snapshot", [("100", "1")], [("101", "2")], snapshot_book, 10, -1),
    ]
    events: list[Any] = []
    for position, text in enumerate(frames):
        envelope = Envelope(1_000 + position, "c", position, "okx-books")
        parsed = feed.parse(text, envelope)
        assert parsed.malformed is None, parsed.malformed
        events.append(feed.accept_books(lane, parsed.books, envelope))
    assert events[0] == [] and events[1] == []
    records = [event for event in events[2] if isinstance(event, BookUpdate)]
    assert [(r.snapshot, r.sequence, r.verdict.outcome, r.envelope.position) for r in records] == [
        (True, 10, Outcome.VERIFIED, 2),
        (False, 9, Outcome.IGNORED, 0),
        (False, 11, Outcome.VERIFIED, 1),
    ]
    assert records[2].sequence_from == 10 and feed.held() == []
    assert feed.lane_url(lane) == "ws://127.0.0.1:9/ws/v5/public"


def test_updates_still_held_when_the_capture_stops_are_recorded_unverified() -> None:
    """Nothing received is dropped: what waited for a snapshot that never came is recorded as
    awaiting it."""
    feed = OkxBookFeed(OkxFeedOptions(symbols=(INST,)))
    lane = Lane(0, [INST], SequenceTracker("okx"), Backoff())
    envelope = Envelope(1_000, "c", 0, "okx-books")
    parsed = feed.parse(push("update", [("99", "5")], [], OrderBook(), 9, 8), envelope)
    assert feed.accept_books(lane, parsed.books, envelope) == []
    (held,) = feed.held()
    assert isinstance(held, BookUpdate) and held.verdict.reason == "awaiting_snapshot"
    assert held.envelope == envelope and feed.held() == []
