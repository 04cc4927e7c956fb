"""OKX's simulated ``books`` channel and REST book through K2's own OKX verifier: every push
checks (checksum and sequence) and rebuilds the simulator's book, pushes buffered before a REST
book are placed on it, and each book fault is caught for its reason."""

from __future__ import annotations

from functools import partial

from k2.exchanges.booksync import Outcome, Reason, Verdict
from k2.exchanges.okx import wire
from k2.exchanges.okx.book import OkxBook, read_push, read_rest_snapshot
from k2.exchanges.parse import load_json
from k2.simulator.book import BookStep
from k2.simulator.exchanges.okx.books import OkxBookSubscription, OkxPublicBooks, rest_book, wrong
from k2.simulator.exchanges.okx.instruments import OKX_INSTRUMENTS
from k2.simulator.faults import FaultBook, FaultRule
from k2.simulator.ledger import Ledger
from tests.unit.simulator.books import Capture, client_top, follow, rebuild, run, true_top

STEPS = 300
INST = OKX_INSTRUMENTS[0]


def _session(*rules: FaultRule) -> tuple[Capture, OkxPublicBooks, OkxBookSubscription]:
    capture = Capture("okx", INST, *rules)
    books = OkxPublicBooks(capture, "okx-public")  # type: ignore[arg-type]
    sub = books.subscribe(INST)
    assert sub is not None
    return capture, books, sub


def _send(capture: Capture, books: OkxPublicBooks, sub: OkxBookSubscription, trades: int) -> None:
    steps = [step for _ in range(trades) for step in capture.trade()]
    sub.cursor = capture.book.step_end
    run(books.send_steps(sub, steps))


def _apply(client: OkxBook, frame: str) -> list[Verdict]:
    push = read_push(load_json(frame))
    assert not isinstance(push, type(None))
    return client.apply(push)  # type: ignore[arg-type]


def _follow(
    capture: Capture, books: OkxPublicBooks, sub: OkxBookSubscription, client: OkxBook
) -> list[Verdict]:
    """The verdicts on each push after the snapshot, one trade a step."""

    async def send(steps: list[BookStep]) -> None:
        sub.cursor = capture.book.step_end
        await books.send_steps(sub, steps)

    return follow(capture, send, partial(_apply, client), lambda: client.book, steps=STEPS)


def _subscribed(*rules: FaultRule) -> tuple[Capture, OkxPublicBooks, OkxBookSubscription, OkxBook]:
    capture, books, sub = _session(*rules)
    run(books.send_snapshot(sub))
    client = OkxBook(INST.symbol)
    assert _apply(client, capture.frames[0])[0].outcome is Outcome.VERIFIED
    return capture, books, sub, client


def test_every_push_verifies_and_rebuilds_the_book() -> None:
    """Without a fault, the snapshot and every update pass OKX's checksum and chain by
    ``prevSeqId``, and after each the client's book is the simulator's, exactly; the ledger
    rebuilds it too."""
    capture, books, sub, client = _subscribed()
    verdicts = _follow(capture, books, sub, client)
    assert len(verdicts) > STEPS * 9 // 10
    assert all(verdict.outcome is Outcome.VERIFIED for verdict in verdicts)
    assert client_top(rebuild(capture.entries, None), None) == true_top(capture.book, None)


def test_prices_and_sizes_are_printed_as_okx_prints_them() -> None:
    """Levels carry no trailing zeros, the retired field "0" and an order count; a removal is
    all zeros but its price."""
    capture, books, sub, _ = _subscribed()
    for _ in range(30):
        _send(capture, books, sub, 1)
    rows = [row for frame in capture.frames for side in ("bids", "asks")
            for row in load_json(frame)["data"][0][side]]  # fmt: skip
    assert all(row[0] == wire.okx_decimal(row[0]) and row[1] == wire.okx_decimal(row[1])
               for row in rows)  # fmt: skip
    assert all(row[2] == "0" and (row[3] == "0") == (row[1] == "0") for row in rows)


def test_a_dropped_push_is_a_gap_at_the_next_one() -> None:
    """The push left out is in the ledger as dropped; the next names it as its ``prevSeqId``,
    which is not the client's ``seqId``."""
    capture, books, sub, client = _subscribed(FaultRule(book_drop_every=20))
    verdicts = _follow(capture, books, sub, client)
    dropped = next(index for index, e in enumerate(capture.entries) if e.fault == "dropped")
    gap = next(verdict for verdict in verdicts if not verdict.verified)
    assert gap.reason is Reason.SEQUENCE_GAP
    assert (gap.expected, gap.received) == (
        capture.entries[dropped - 1].sequence,
        capture.entries[dropped].sequence,
    )


def test_a_sequence_jump_is_a_gap_at_that_push() -> None:
    """A push whose ``prevSeqId`` is one above the true one is a gap at once."""
    capture, books, sub, client = _subscribed(FaultRule(book_jump_every=25))
    verdicts = _follow(capture, books, sub, client)
    jumped = next(index for index, e in enumerate(capture.entries) if e.fault == "sequence_jump")
    gap = next(verdict for verdict in verdicts if not verdict.verified)
    true_prev = capture.entries[jumped - 1].sequence or 0
    assert gap.reason is Reason.SEQUENCE_GAP
    assert (gap.expected, gap.received) == (true_prev, true_prev + 1)


def test_a_wrong_checksum_is_a_mismatch() -> None:
    """A push with a wrong checksum is a mismatch naming it and the book's (the true one)."""
    capture, books, sub, client = _subscribed(FaultRule(book_checksum_every=10))
    verdicts = _follow(capture, books, sub, client)
    entry = next(entry for entry in capture.entries if entry.fault == "bad_checksum")
    bad = next(verdict for verdict in verdicts if not verdict.verified)
    assert bad.reason is Reason.CHECKSUM_MISMATCH
    assert entry.checksum is not None and (bad.expected, bad.received) == (
        wrong(entry.checksum),
        entry.checksum,
    )
    assert wrong(-1) != 0 and wrong(2**31 - 1) < 2**31


def test_pushes_buffered_before_a_rest_book_are_placed_on_it_unless_it_is_stale() -> None:
    """Without the subscription snapshot, the client buffers pushes; a stale REST book is too
    old for them, a fresh one places them and every later push verifies."""
    capture, books, sub = _session()
    client = OkxBook(INST.symbol)
    for _ in range(5):
        _send(capture, books, sub, 1)
    for frame in capture.frames:
        assert _apply(client, frame)[0].outcome is Outcome.BUFFERED
    faults = FaultBook((FaultRule(protocol="okx", stale_snapshots=1),))
    for expected in (Reason.SNAPSHOT_TOO_OLD, None):
        body = wire.rest_body([rest_book(capture.book, 400, faults, Ledger(None), "okx")])
        snapshot = read_rest_snapshot(INST.symbol, load_json(body))
        verdicts = client.apply(snapshot)  # type: ignore[arg-type]
        assert verdicts[0].reason is expected
    assert all(verdict.verified for verdict in verdicts)
    assert all(verdict.verified for verdict in _follow(capture, books, sub, client))
