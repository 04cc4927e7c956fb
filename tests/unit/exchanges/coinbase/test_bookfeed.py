"""Coinbase's book feed counts every message of a connection, heartbeats included: a lost
message breaks every book of the connection, each resynced, each gap closed by its snapshot."""

from __future__ import annotations

from typing import Any

from k2.exchanges.base import Envelope, SequenceTracker
from k2.exchanges.booksync import BookGap, BookUpdate, Outcome, Reason
from k2.exchanges.coinbase import wire
from k2.exchanges.coinbase.bookfeed import CoinbaseBookFeed
from k2.exchanges.coinbase.client import CoinbaseFeedOptions
from k2.exchanges.feed import Lane
from k2.transport.ws import Backoff

PRODUCTS = ["BTC-USD", "ETH-USD"]
STAMP = "2026-12-07T10:00:00.123456789Z"


def l2(product: str, kind: str, sequence: int) -> str:
    return wire.render_l2_data(product, kind, [("bid", "100.5", "1.25")], STAMP, sequence, STAMP)  # type: ignore[arg-type]


def test_a_lost_message_breaks_every_book_of_the_connection() -> None:
    """Snapshots and updates verify; a heartbeat counts; a jump in sequence_num breaks both
    books (one resync each, no record of its own), and each snapshot closes its product's gap."""
    feed = CoinbaseBookFeed(CoinbaseFeedOptions(symbols=tuple(PRODUCTS)))
    lane = Lane(0, list(PRODUCTS), SequenceTracker("coinbase"), Backoff())
    frames = [
        l2("BTC-USD", "snapshot", 0),
        l2("ETH-USD", "snapshot", 1),
        wire.render_heartbeats(2, STAMP, "2026-12-07 10:00:00 +0000 UTC", 1),
        l2("BTC-USD", "update", 3),
        l2("ETH-USD", "update", 5),  # 4 lost
        l2("BTC-USD", "snapshot", 6),
    ]
    events: list[Any] = []
    for position, text in enumerate(frames):
        envelope = Envelope(1_000 * (position + 1), "c", position, "coinbase-level2")
        parsed = feed.parse(text, envelope)
        assert parsed.malformed is None, parsed.malformed
        events += feed.accept_books(lane, parsed.books, envelope)
    records = [event for event in events if isinstance(event, BookUpdate)]
    assert [(r.native_symbol, r.sequence, r.verdict.outcome) for r in records] == [
        ("BTC-USD", 0, Outcome.VERIFIED),
        ("ETH-USD", 1, Outcome.VERIFIED),
        ("BTC-USD", 3, Outcome.VERIFIED),
        ("ETH-USD", 5, Outcome.UNVERIFIED),
        ("BTC-USD", 6, Outcome.VERIFIED),
    ]
    assert records[3].verdict.reason is Reason.AWAITING_SNAPSHOT
    assert records[0].exchange_us == 1_796_637_600_123_456
    gaps = [event for event in events if isinstance(event, BookGap)]
    assert gaps == [BookGap("coinbase", "BTC-USD", 5_000, 6_000, Reason.SEQUENCE_GAP)]
    assert feed.coverage.unverified() == {"ETH-USD": 5_000}
    assert sorted(feed.resyncs_due(lane)) == PRODUCTS
    assert feed.book_stats["breaks:sequence_gap"] == 2
