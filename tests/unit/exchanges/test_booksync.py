"""Which intervals of a symbol's book are unverified, and what becomes of a book frame that
cannot be read."""

from __future__ import annotations

from k2.exchanges.base import Envelope, ParsedFrame
from k2.exchanges.booksync import (
    BookCoverage,
    BookGap,
    BookMalformed,
    Outcome,
    Reason,
    Verdict,
    with_dead_letter,
)

VERIFIED = Verdict(Outcome.VERIFIED)
IGNORED = Verdict(Outcome.IGNORED)
BUFFERED = Verdict(Outcome.BUFFERED)
GAP = Verdict(Outcome.UNVERIFIED, Reason.SEQUENCE_GAP, 9, 5, 9, "5 due")
WAITING = Verdict(Outcome.UNVERIFIED, Reason.AWAITING_SNAPSHOT)


def test_an_interval_runs_from_the_first_unverified_message_to_the_next_verified_one() -> None:
    """Later unverified messages do not move its start; buffered and ignored ones neither open
    nor close one; each symbol has its own."""
    coverage = BookCoverage("binance")
    assert coverage.observe("A", BUFFERED, 1) is None
    assert coverage.observe("A", VERIFIED, 2) is None
    assert coverage.observe("B", VERIFIED, 2) is None
    assert coverage.observe("A", GAP, 3) is None
    assert coverage.observe("A", WAITING, 4) is None
    assert coverage.observe("A", BUFFERED, 5) is None
    assert coverage.unverified() == {"A": 3}
    assert coverage.observe("B", IGNORED, 6) is None
    gap = coverage.observe("A", VERIFIED, 7)
    assert gap == BookGap("binance", "A", 3, 7, Reason.SEQUENCE_GAP, "5 due")
    assert coverage.unverified() == {}


def test_nothing_is_missing_before_a_symbols_first_verified_book() -> None:
    """Messages before the first snapshot open no interval (there was no book to lose)."""
    coverage = BookCoverage("okx")
    assert coverage.observe("A", WAITING, 1) is None
    assert coverage.observe("A", GAP, 2) is None
    assert coverage.unverified() == {}
    assert coverage.close_all(3) == []


def test_the_end_of_a_run_closes_every_open_interval_at_that_time() -> None:
    """Each symbol still unverified gets its gap, ending when the run ends."""
    coverage = BookCoverage("kraken")
    for symbol in ("A", "B", "C"):
        coverage.observe(symbol, VERIFIED, 1)
    coverage.observe("A", GAP, 4)
    coverage.observe("C", Verdict(Outcome.UNVERIFIED, Reason.DISCONNECTED), 5)
    gaps = coverage.close_all(10)
    assert [(g.native_symbol, g.from_us, g.to_us, g.reason) for g in gaps] == [
        ("A", 4, 10, Reason.SEQUENCE_GAP),
        ("C", 5, 10, Reason.DISCONNECTED),
    ]
    assert coverage.close_all(11) == []


def test_a_book_message_that_cannot_be_read_is_also_a_dead_letter() -> None:
    """Its frame's text and the reader's reason go to the dead-letter topic; a frame that was
    read is left as it is."""
    envelope = Envelope(1, "c", 0, "kraken-v2")
    bad = BookMalformed("book checksum 'x' is not an unsigned 32-bit integer", "BTC/USD")
    parsed = with_dead_letter(ParsedFrame(books=(bad,)), '{"channel":"book"}', envelope, 10)
    assert parsed.books == (bad,)
    assert parsed.malformed is not None
    assert (parsed.malformed.raw, parsed.malformed.error) == ('{"channel"', bad.error)
    good = ParsedFrame(books=("a message",))
    assert with_dead_letter(good, "{}", envelope, 10) is good


def test_a_restarted_capture_is_unverified_from_its_last_record_to_the_first_snapshot() -> None:
    """A symbol captured before is covered at once: its interval runs from the previous run's
    last record to this run's first verified message."""
    coverage = BookCoverage("kraken")
    coverage.resume("A", 100)
    assert coverage.unverified() == {"A": 100}
    assert coverage.observe("A", WAITING, 150) is None
    assert coverage.observe("A", VERIFIED, 200) == BookGap(
        "kraken", "A", 100, 200, Reason.RESTARTED
    )
    assert coverage.observe("B", VERIFIED, 200) is None
