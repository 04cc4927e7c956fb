"""Coinbase's simulated ``level2`` channel through K2's own Coinbase verifier: every message
takes the connection's next ``sequence_num`` and rebuilds the simulator's book, and each book
fault is caught as a gap of the connection."""

from __future__ import annotations

from itertools import count

from k2.exchanges.booksync import Outcome, Reason, Verdict
from k2.exchanges.coinbase.book import CoinbaseBooks, read_l2
from k2.exchanges.parse import load_json
from k2.simulator.book import BookStep
from k2.simulator.exchanges.coinbase.books import CoinbaseBooks as SimBooks
from k2.simulator.exchanges.coinbase.books import CoinbaseBookSubscription
from k2.simulator.exchanges.coinbase.instruments import COINBASE_INSTRUMENTS
from k2.simulator.faults import FaultRule
from tests.unit.simulator.books import Capture, client_top, follow, rebuild, run, true_top

STEPS = 300
INST = COINBASE_INSTRUMENTS[0]


def _subscribed(*rules: FaultRule) -> tuple[Capture, SimBooks, CoinbaseBookSubscription]:
    capture = Capture("coinbase", INST, *rules)
    books = SimBooks(capture, "coinbase-advanced", count().__next__)  # type: ignore[arg-type]
    sub = books.subscribe(INST)
    assert sub is not None and books.subscribe(INST) is None
    run(books.send_snapshot(sub))
    return capture, books, sub


def _follow(capture: Capture, books: SimBooks, sub: CoinbaseBookSubscription) -> list[Verdict]:
    """The verdicts on the snapshot and on each message after it, one trade a step."""
    client = CoinbaseBooks()

    def apply(frame: str) -> list[Verdict]:
        return [verdict for _, verdict in client.apply(read_l2(load_json(frame)))]

    async def send(steps: list[BookStep]) -> None:
        sub.cursor = capture.book.step_end
        await books.send_steps(sub, steps)

    first = apply(capture.frames[0])
    book = client.book(INST.symbol)
    return first + follow(capture, send, apply, lambda: book.book, steps=STEPS)


def test_every_message_follows_and_rebuilds_the_book() -> None:
    """Without a fault, the snapshot is the whole book, every update is numbered one above the
    message before, and after each the client's book is the simulator's, exactly."""
    capture, books, sub = _subscribed()
    verdicts = _follow(capture, books, sub)
    assert len(verdicts) > STEPS * 9 // 10
    assert all(verdict.outcome is Outcome.VERIFIED for verdict in verdicts)
    assert [load_json(frame)["sequence_num"] for frame in capture.frames] == list(
        range(len(capture.frames))
    )
    assert client_top(rebuild(capture.entries, None), None) == true_top(capture.book, None)


def test_a_dropped_message_is_a_gap_of_the_connection() -> None:
    """A message left out still took its number: the next one is a gap."""
    capture, books, sub = _subscribed(FaultRule(book_drop_every=20))
    verdicts = _follow(capture, books, sub)
    gap = next(verdict for verdict in verdicts if not verdict.verified)
    assert gap.reason is Reason.SEQUENCE_GAP
    assert gap.received == (gap.expected or 0) + 1
    assert capture.entries[20].fault == "dropped"


def test_a_sequence_jump_is_a_gap_at_that_message() -> None:
    """A message numbered one above its place is a gap at once, with no change missing."""
    capture, books, sub = _subscribed(FaultRule(book_jump_every=25))
    verdicts = _follow(capture, books, sub)
    gap = next(index for index, verdict in enumerate(verdicts) if not verdict.verified)
    assert verdicts[gap].reason is Reason.SEQUENCE_GAP
    assert capture.entries[gap].fault == "sequence_jump"
