"""Kraken v2's simulated ``book`` channel through K2's own Kraken verifier: every message checks
and rebuilds the simulator's book at every step, and each book fault is caught for its reason."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from k2.exchanges.booksync import BookMalformed, Outcome, Reason, Verdict
from k2.exchanges.kraken.book import KrakenBookMessage, read_v1, read_v2
from k2.exchanges.kraken.book import KrakenBooks as ClientBooks
from k2.exchanges.parse import load_json
from k2.simulator.book import BookStep
from k2.simulator.exchanges.kraken.books import (
    KrakenBooks,
    KrakenV1Books,
    KrakenV2Books,
    depth_error,
)
from k2.simulator.exchanges.kraken.instruments import KRAKEN_INSTRUMENTS, as_kraken
from k2.simulator.faults import FaultRule
from tests.unit.simulator.books import Capture, client_top, follow, rebuild, run, true_top

STEPS = 400


def _session(
    depth: int, *rules: FaultRule, instrument_index: int = 0
) -> tuple[Capture, KrakenV2Books, str]:
    instrument = KRAKEN_INSTRUMENTS[instrument_index]
    capture = Capture("kraken", instrument, *rules)
    books = KrakenV2Books(capture, "kraken-v2")  # type: ignore[arg-type]
    symbol = as_kraken(instrument).v2_symbol
    books.subscribe(symbol, instrument, depth)
    run(books.send_snapshot(books.subs[symbol]))
    return capture, books, symbol


def _follow(
    capture: Capture,
    books: KrakenBooks,
    symbol: str,
    read: Callable[[object], KrakenBookMessage | BookMalformed] = read_v2,
) -> list[Verdict]:
    """The verdict on the snapshot and on each update, one trade a step (v2 frames unless
    ``read`` says otherwise)."""
    sub = books.subs[symbol]
    client = ClientBooks(sub.view.depth)

    def apply(frame: str) -> list[Verdict]:
        return [client.apply(read(load_json(frame)))[1]]

    async def send(steps: list[BookStep]) -> None:
        sub.cursor = capture.book.step_end
        await books.send_steps(sub, steps)

    first = apply(capture.frames[0])
    book = client.book(symbol)
    depth = sub.view.depth
    return first + follow(capture, send, apply, lambda: book.book, steps=STEPS, depth=depth)


@pytest.mark.parametrize(("depth", "index"), [(10, 0), (25, 3), (100, 4)])
def test_every_message_verifies_and_rebuilds_the_book(depth: int, index: int) -> None:
    """Without a fault, the snapshot and every update pass Kraken's checksum, and after each
    step the client's book is the simulator's top ``depth`` levels, exactly."""
    capture, books, symbol = _session(depth, instrument_index=index)
    verdicts = _follow(capture, books, symbol)
    assert len(verdicts) > STEPS // 2
    assert all(verdict.outcome is Outcome.VERIFIED for verdict in verdicts)
    assert [entry.fault for entry in capture.entries] == [None] * len(verdicts)


def test_a_dropped_update_breaks_the_next_checksum() -> None:
    """The update left out is in the ledger as dropped, and the next message's checksum no
    longer matches the client's book."""
    capture, books, symbol = _session(10, FaultRule(book_drop_every=20))
    verdicts = _follow(capture, books, symbol)
    first_bad = next(index for index, verdict in enumerate(verdicts) if not verdict.verified)
    assert first_bad == 20  # the snapshot, 19 updates, then the one after the 20th (dropped)
    assert verdicts[first_bad].reason is Reason.CHECKSUM_MISMATCH
    assert capture.entries[20].fault == "dropped"


def test_a_wrong_checksum_is_reported_with_both_values() -> None:
    """A message sent with a wrong checksum is a mismatch naming the sent and the computed
    checksum, which the ledger records as the true one."""
    capture, books, symbol = _session(10, FaultRule(book_checksum_every=15))
    verdicts = _follow(capture, books, symbol)
    bad = verdicts[15]
    assert all(verdict.verified for verdict in verdicts[:15])
    assert bad.reason is Reason.CHECKSUM_MISMATCH
    true = capture.entries[15].checksum
    assert capture.entries[15].fault == "bad_checksum" and true is not None
    assert (bad.expected, bad.received) == ((true + 1) % 2**32, true)


def test_a_sequence_jump_means_nothing_to_a_book_without_sequence() -> None:
    """Kraken's book has no sequence: the jump fault leaves every message verified."""
    capture, books, symbol = _session(10, FaultRule(book_jump_every=3))
    assert all(verdict.verified for verdict in _follow(capture, books, symbol))


def test_the_ledger_rebuilds_what_the_subscription_should_hold() -> None:
    """Applying a connection's ledger lines in order, dropped ones included, and cutting to the
    depth gives the simulator's book."""
    capture, books, symbol = _session(10, FaultRule(book_drop_every=7))
    _follow(capture, books, symbol)
    assert client_top(rebuild(capture.entries, 10), 10) == true_top(capture.book, 10)


def test_only_kraken_depths_are_accepted() -> None:
    """A depth Kraken does not offer is refused with the depths it does."""
    assert depth_error(10) is None and depth_error(1000) is None
    assert "10, 25, 100, 500, 1000" in (depth_error(11) or "")
    assert depth_error(True) is not None


def _v1_session(*rules: FaultRule) -> tuple[Capture, KrakenV1Books, str]:
    instrument = KRAKEN_INSTRUMENTS[0]
    capture = Capture("kraken", instrument, *rules)
    books = KrakenV1Books(capture, "kraken-v1")  # type: ignore[arg-type]
    run(books.send_snapshot(books.subscribe(instrument.symbol, instrument, 25, 102)))
    return capture, books, instrument.symbol


def test_v1_frames_verify_and_carry_the_depth_in_their_channel() -> None:
    """v1's snapshot (no checksum) and every update (checksum in the last object) verify, name
    the channel ``book-25``, and rebuild the simulator's book; its levels are v1's padded
    strings with a time."""
    capture, books, pair = _v1_session()
    verdicts = _follow(capture, books, pair, read_v1)
    assert all(verdict.outcome is Outcome.VERIFIED for verdict in verdicts)
    frames = [load_json(frame) for frame in capture.frames]
    assert {frame[-2] for frame in frames} == {"book-25"}
    assert set(frames[0][1]) == {"as", "bs"} and all("c" in frame[-3] for frame in frames[1:])
    price, volume, _ = frames[0][1]["as"][0]
    assert len(price.partition(".")[2]) == 5 and len(volume.partition(".")[2]) == 8


def test_v1_dropped_update_breaks_the_next_checksum() -> None:
    """A dropped v1 update shows as a checksum mismatch at the next one."""
    capture, books, pair = _v1_session(FaultRule(book_drop_every=10))
    verdicts = _follow(capture, books, pair, read_v1)
    assert verdicts[10].reason is Reason.CHECKSUM_MISMATCH
    assert all(verdict.verified for verdict in verdicts[:10])
