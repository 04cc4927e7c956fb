"""A book feed turns each book message into an event with its verdict, asks for a resync when a
book breaks, and reports each unverified interval once a snapshot verifies the book again."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from k2.exchanges.base import Envelope, SequenceTracker
from k2.exchanges.binance.book import DepthUpdate
from k2.exchanges.binance.bookfeed import BinanceBookFeed
from k2.exchanges.binance.client import BinanceFeedOptions
from k2.exchanges.book import Level
from k2.exchanges.bookfeed import breaks
from k2.exchanges.booksync import BookGap, BookUpdate, Outcome, Reason, Verdict
from k2.exchanges.feed import Lane
from k2.exchanges.kraken import wire
from k2.exchanges.kraken.book import checksum
from k2.exchanges.kraken.bookfeed import KrakenBookFeed
from k2.exchanges.kraken.client import KrakenFeedOptions
from k2.transport.ws import Backoff

SYMBOL = "BTC/USD"
Rows = list[tuple[str, str]]
BIDS: Rows = [("100.0", "1.5"), ("99.5", "2.0")]
ASKS: Rows = [("100.5", "0.5"), ("101.0", "3.25")]


def levels(rows: Rows) -> list[Level]:
    return [Level(Decimal(price), Decimal(size), price, size) for price, size in rows]


def message(
    kind: str, bids: Rows, asks: Rows, after: tuple[Rows, Rows], wrong: bool = False
) -> str:
    """A v2 book message carrying the checksum of ``after`` (the book once it is applied), or
    a wrong one."""
    value = (checksum(levels(after[0]), levels(after[1])) + wrong) % 2**32
    stamp = "2026-12-07T10:00:00.000001Z"
    return wire.render_v2_book(SYMBOL, kind, bids, asks, value, stamp)  # type: ignore[arg-type]


class Fed:
    """A Kraken book feed fed frames by hand, on one lane, without a connection."""

    def __init__(self) -> None:
        options = KrakenFeedOptions(symbols=(SYMBOL,), ws_url="ws://127.0.0.1:9/v2", book_depth=10)
        self.feed = KrakenBookFeed(options)
        self.lane = Lane(0, [SYMBOL], SequenceTracker("kraken"), Backoff())
        self.position = 0

    def receive(self, text: str, received_us: int) -> list[Any]:
        envelope = Envelope(received_us, "c1", self.position, "kraken-v2")
        self.position += 1
        parsed = self.feed.parse(text, envelope)
        assert parsed.malformed is None, parsed.malformed
        return self.feed.accept_books(self.lane, parsed.books, envelope)


def updates(events: list[Any]) -> list[BookUpdate]:
    return [event for event in events if isinstance(event, BookUpdate)]


def test_a_wrong_checksum_is_an_unverified_interval_from_the_break_to_the_next_snapshot() -> None:
    """Snapshot and update verified; a wrong checksum breaks the book and asks for one resync;
    what follows waits for the snapshot; the snapshot verifies it and closes one gap from the
    break to the snapshot, with the reason."""
    fed = Fed()
    after_update = ([("100.0", "2.5"), ("99.5", "2.0")], ASKS)
    after_removal = (after_update[0], [("101.0", "3.25")])
    frames = [
        message("snapshot", BIDS, ASKS, (BIDS, ASKS)),
        message("update", [("100.0", "2.5")], [], after_update),
        message("update", [], [("100.5", "0")], after_removal, wrong=True),
        message("update", [("99.5", "0")], [], ([("100.0", "2.5")], after_removal[1])),
        message("snapshot", BIDS, ASKS, (BIDS, ASKS)),
    ]
    events = [fed.receive(text, 1_000 * (index + 1)) for index, text in enumerate(frames)]
    verdicts = [update.verdict for batch in events for update in updates(batch)]
    assert [v.outcome for v in verdicts] == [
        Outcome.VERIFIED,
        Outcome.VERIFIED,
        Outcome.UNVERIFIED,
        Outcome.UNVERIFIED,
        Outcome.VERIFIED,
    ]
    assert [v.reason for v in verdicts[2:4]] == [Reason.CHECKSUM_MISMATCH, Reason.AWAITING_SNAPSHOT]
    assert verdicts[2].expected == verdicts[2].received + 1
    gaps = [event for batch in events for event in batch if isinstance(event, BookGap)]
    assert gaps == [BookGap("kraken", SYMBOL, 3_000, 5_000, Reason.CHECKSUM_MISMATCH)]
    first = updates(events[0])[0]
    assert first.snapshot and first.exchange_us == 1_796_637_600_000_001
    assert [(level.price_text, level.size_text) for level in first.bids] == BIDS
    assert fed.feed.resyncs_due(fed.lane) == [SYMBOL]
    assert fed.feed.resyncs_due(fed.lane) == []  # taken once
    assert fed.feed.book_stats == {
        "resyncs": 0,
        "messages:verified": 3,
        "messages:unverified": 2,
        "breaks:checksum_mismatch": 1,
    }


def test_a_lost_connection_leaves_every_book_unverified_until_the_run_ends() -> None:
    """A disconnection opens an interval for each covered symbol; the run ending closes it."""
    fed = Fed()
    fed.receive(message("snapshot", BIDS, ASKS, (BIDS, ASKS)), 1_000)
    assert fed.feed.lane_ended(fed.lane) == []
    (since,) = fed.feed.coverage.unverified().values()
    (gap,) = fed.feed.coverage.close_all(since + 7)
    assert (gap.native_symbol, gap.reason, gap.to_us - gap.from_us) == (
        SYMBOL,
        Reason.DISCONNECTED,
        7,
    )
    assert fed.feed.coverage.unverified() == {}


def test_updates_before_the_first_snapshot_are_no_gap() -> None:
    """Before a symbol's first snapshot there is no book, so nothing is missing yet."""
    fed = Fed()
    early = fed.receive(message("update", [("100.0", "1")], [], ([("100.0", "1")], [])), 1_000)
    assert updates(early)[0].verdict.reason is Reason.UPDATE_BEFORE_SNAPSHOT
    assert fed.feed.coverage.unverified() == {}
    assert fed.feed.resyncs_due(fed.lane) == []


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (Verdict(Outcome.UNVERIFIED, Reason.CHECKSUM_MISMATCH), True),
        (Verdict(Outcome.UNVERIFIED, Reason.SEQUENCE_GAP), True),
        (Verdict(Outcome.UNVERIFIED, Reason.MALFORMED), True),
        (Verdict(Outcome.UNVERIFIED, Reason.AWAITING_SNAPSHOT), False),
        (Verdict(Outcome.UNVERIFIED, Reason.UPDATE_BEFORE_SNAPSHOT), False),
        (Verdict(Outcome.BUFFERED), False),
        (Verdict(Outcome.VERIFIED), False),
    ],
)
def test_only_a_new_break_asks_for_a_resync(verdict: Verdict, expected: bool) -> None:
    """A message that follows a break, or waits for a snapshot, asks for no second resync."""
    assert breaks(verdict) is expected


@pytest.mark.parametrize(
    ("unit", "event_time"),
    [("MILLISECOND", 1_796_637_600_123), ("MICROSECOND", 1_796_637_600_123_456)],
)
def test_a_binance_depth_event_keeps_its_time_in_the_unit_the_connection_asked_for(
    unit: str, event_time: int
) -> None:
    """``E`` comes in the connection's ``timeUnit`` (the trade ingest asks for µs): the record's
    exchange time is µs either way."""
    options = BinanceFeedOptions(symbols=("BTCUSDT",), time_unit=unit)  # type: ignore[arg-type]
    feed = BinanceBookFeed(options)
    event = DepthUpdate("BTCUSDT", 7, 9, event_time, (), ())
    verdict = Verdict(Outcome.VERIFIED)
    update = feed.book_update(event, "BTCUSDT", verdict, Envelope(1, "c1", 0, "binance-depth"), 0)
    assert update.exchange_us == 1_796_637_600_123_000 + (456 if unit == "MICROSECOND" else 0)
