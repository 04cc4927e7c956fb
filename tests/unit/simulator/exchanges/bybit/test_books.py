"""Bybit's simulated ``orderbook`` topics through K2's own Bybit verifier: every message follows
the one before by ``u`` and rebuilds the simulator's book within the topic's depth, and each
book fault is caught for its reason."""

from __future__ import annotations

import pytest

from k2.exchanges.booksync import Outcome, Reason, Verdict
from k2.exchanges.bybit import wire
from k2.exchanges.bybit.book import BybitBooks, read_message
from k2.exchanges.parse import load_json
from k2.simulator.book import BookStep
from k2.simulator.exchanges.bybit.books import BybitBooks as SimBooks
from k2.simulator.exchanges.bybit.books import BybitBookTopic
from k2.simulator.exchanges.bybit.instruments import BYBIT_INSTRUMENTS
from k2.simulator.faults import FaultRule
from tests.unit.simulator.books import Capture, client_top, follow, rebuild, run, true_top

STEPS = 300
INST = BYBIT_INSTRUMENTS[0]


def _subscribed(depth: int, *rules: FaultRule) -> tuple[Capture, SimBooks, BybitBookTopic]:
    capture = Capture("bybit", INST, *rules)
    books = SimBooks(capture, "bybit-spot")  # type: ignore[arg-type]
    sub = books.subscribe(wire.book_topic(depth, INST.symbol), depth, INST)
    run(books.send_snapshot(sub, capture.book.update_id))
    return capture, books, sub


def _follow(capture: Capture, books: SimBooks, sub: BybitBookTopic) -> list[Verdict]:
    """The verdict on the snapshot and on each message after it, one trade a step."""
    client = BybitBooks()

    def apply(frame: str) -> list[Verdict]:
        return [client.apply(read_message(load_json(frame)))[1]]

    async def send(steps: list[BookStep]) -> None:
        sub.cursor = capture.book.step_end
        await books.send_steps(sub, steps)

    first = apply(capture.frames[0])
    book = client.book(INST.symbol)
    depth = sub.view.depth
    return first + follow(capture, send, apply, lambda: book.book, steps=STEPS, depth=depth)


@pytest.mark.parametrize("depth", wire.BOOK_DEPTHS)
def test_every_message_follows_and_rebuilds_the_book(depth: int) -> None:
    """Without a fault, every message is numbered one above the one before, and after each the
    client's book is the simulator's top ``depth`` levels, exactly; depth 1 sends snapshots."""
    capture, books, sub = _subscribed(depth)
    verdicts = _follow(capture, books, sub)
    assert len(verdicts) > STEPS // 3  # the best levels change at one step in three or so
    assert all(verdict.outcome is Outcome.VERIFIED for verdict in verdicts)
    kinds = {load_json(frame)["type"] for frame in capture.frames[1:]}
    assert kinds == ({"snapshot"} if depth == 1 else {"delta"})
    assert client_top(rebuild(capture.entries, depth), depth) == true_top(capture.book, depth)


def test_a_dropped_delta_is_a_gap_at_the_next_one() -> None:
    """The delta left out is in the ledger as dropped; the next one skips its number."""
    capture, books, sub = _subscribed(50, FaultRule(book_drop_every=20))
    verdicts = _follow(capture, books, sub)
    gap = next(verdict for verdict in verdicts if not verdict.verified)
    assert gap.reason is Reason.SEQUENCE_GAP
    assert gap.received == (gap.expected or 0) + 1
    assert [entry.fault for entry in capture.entries].count("dropped") >= 1


def test_a_sequence_jump_is_a_gap_at_that_delta() -> None:
    """A delta numbered one above its place is a gap at once."""
    capture, books, sub = _subscribed(200, FaultRule(book_jump_every=25))
    verdicts = _follow(capture, books, sub)
    gap = next(index for index, verdict in enumerate(verdicts) if not verdict.verified)
    assert verdicts[gap].reason is Reason.SEQUENCE_GAP
    assert capture.entries[gap].fault == "sequence_jump"
    assert verdicts[gap].received == (verdicts[gap].expected or 0) + 1


def test_a_wrong_checksum_means_nothing_to_a_book_without_checksum() -> None:
    """Bybit's book has no checksum: the wrong-checksum fault leaves every message verified."""
    capture, books, sub = _subscribed(50, FaultRule(book_checksum_every=2))
    assert all(verdict.verified for verdict in _follow(capture, books, sub))
