"""Binance's simulated diff depth stream and REST snapshot through K2's own Binance verifier:
every event chains onto the snapshot and rebuilds the simulator's book, and each book fault is
caught for its reason."""

from __future__ import annotations

from pathlib import Path

from k2.exchanges.binance.book import BinanceBook, read_snapshot, read_update
from k2.exchanges.booksync import Outcome, Reason, Verdict
from k2.exchanges.parse import load_json
from k2.simulator.book import BookStep
from k2.simulator.exchanges.binance.books import BinanceDepths, DepthStream, depth_snapshot
from k2.simulator.exchanges.binance.instruments import BINANCE_INSTRUMENTS
from k2.simulator.faults import FaultBook, FaultRule
from k2.simulator.ledger import Ledger, read_book_ledger
from tests.unit.simulator.books import Capture, client_top, follow, rebuild, run, true_top

STEPS = 300
STREAM = "btcusdt@depth@100ms"


def _session(*rules: FaultRule) -> tuple[Capture, BinanceDepths, DepthStream]:
    capture = Capture("binance", BINANCE_INSTRUMENTS[0], *rules)
    depths = BinanceDepths(capture, "binance")  # type: ignore[arg-type]
    depths.add(STREAM, "depth@100ms", BINANCE_INSTRUMENTS[0])
    return capture, depths, depths.subs[STREAM]


def _send(capture: Capture, depths: BinanceDepths, stream: DepthStream, trades: int) -> None:
    steps = [step for _ in range(trades) for step in capture.trade()]
    stream.cursor = capture.book.step_end
    run(depths.send_steps(stream, steps, 1_700_000_000_000, wrap=True))


def _snapshot(capture: Capture, faults: FaultBook | None = None) -> str:
    return depth_snapshot(capture.book, 5000, faults or FaultBook(), Ledger(None), "binance")


def _follow(
    capture: Capture, depths: BinanceDepths, stream: DepthStream, client: BinanceBook
) -> list[Verdict]:
    """The verdict on each event after the snapshot, one trade a step."""

    async def send(steps: list[BookStep]) -> None:
        stream.cursor = capture.book.step_end
        await depths.send_steps(stream, steps, 1_700_000_000_000, wrap=True)

    def apply(frame: str) -> list[Verdict]:
        return [client.apply(read_update(load_json(frame)))]  # type: ignore[arg-type]

    return follow(capture, send, apply, lambda: client.book, steps=STEPS)


def _synced(*rules: FaultRule) -> tuple[Capture, BinanceDepths, DepthStream, BinanceBook]:
    """A client that buffered a few events, then placed them on a REST snapshot."""
    capture, depths, stream = _session(*rules)
    client = BinanceBook("BTCUSDT")
    _send(capture, depths, stream, 3)
    snapshot = read_snapshot(load_json(_snapshot(capture)))
    _send(capture, depths, stream, 2)
    for frame in capture.frames:
        client.apply(read_update(load_json(frame)))  # type: ignore[arg-type]
    verdicts = client.apply_snapshot(snapshot)  # type: ignore[arg-type]
    assert verdicts[0].outcome is Outcome.VERIFIED
    return capture, depths, stream, client


def test_every_event_chains_onto_the_snapshot_and_rebuilds_the_book() -> None:
    """Without a fault, the buffered events are placed on the REST snapshot, every later event
    follows the one before, and after each the client's book is the simulator's, exactly."""
    capture, depths, stream, client = _synced()
    verdicts = _follow(capture, depths, stream, client)
    assert len(verdicts) > STEPS * 9 // 10  # a trade may leave the book as it was
    assert all(verdict.outcome is Outcome.VERIFIED for verdict in verdicts)


def test_an_event_merges_every_step_since_the_last_one() -> None:
    """Events are paced: one spans the update ids of every step since the previous, and holds
    each changed level once."""
    capture, depths, stream = _session()
    _send(capture, depths, stream, 10)
    event = load_json(capture.frames[0])["data"]
    entry = capture.entries[0]
    assert (event["U"], event["u"]) == (entry.first_sequence, entry.sequence)
    assert event["u"] - event["U"] + 1 >= len(event["b"]) + len(event["a"])
    assert len({price for price, _ in event["b"]}) == len(event["b"])


def test_a_dropped_event_is_a_gap_at_the_next_one() -> None:
    """The event left out is in the ledger as dropped, and the next one starts above the
    client's id + 1: a gap naming the id due and the id that came."""
    capture, depths, stream, client = _synced(FaultRule(book_drop_every=20))
    verdicts = _follow(capture, depths, stream, client)
    dropped = next(entry for entry in capture.entries if entry.fault == "dropped")
    gap = next(verdict for verdict in verdicts if not verdict.verified)
    assert gap.reason is Reason.SEQUENCE_GAP
    assert gap.expected == dropped.first_sequence
    assert gap.received == (dropped.sequence or 0) + 1


def test_a_sequence_jump_is_a_gap_at_that_event() -> None:
    """An event whose ids jump by one is a gap at once, though no change is missing."""
    capture, depths, stream, client = _synced(FaultRule(book_jump_every=25))
    verdicts = _follow(capture, depths, stream, client)
    jumped = next(entry for entry in capture.entries if entry.fault == "sequence_jump")
    gap = next(verdict for verdict in verdicts if not verdict.verified)
    assert gap.reason is Reason.SEQUENCE_GAP
    assert (gap.expected, gap.received) == (jumped.first_sequence, (jumped.first_sequence or 0) + 1)


def test_a_stale_snapshot_is_too_old_for_the_buffered_events() -> None:
    """A stale REST snapshot ends before the first event the client buffered: it is refused as
    too old, and the next (fresh) snapshot places the same buffer."""
    capture, depths, stream = _session()
    client = BinanceBook("BTCUSDT")
    _send(capture, depths, stream, 3)
    for frame in capture.frames:
        client.apply(read_update(load_json(frame)))  # type: ignore[arg-type]
    faults = FaultBook((FaultRule(protocol="binance", stale_snapshots=1),))
    stale = read_snapshot(load_json(_snapshot(capture, faults)))
    assert client.apply_snapshot(stale)[0].reason is Reason.SNAPSHOT_TOO_OLD  # type: ignore[arg-type]
    fresh = read_snapshot(load_json(_snapshot(capture, faults)))
    assert client.apply_snapshot(fresh)[0].outcome is Outcome.VERIFIED  # type: ignore[arg-type]


def test_the_ledger_rebuilds_the_book_through_dropped_events(tmp_path: Path) -> None:
    """The REST snapshot's ledger line and the connection's lines after it, dropped ones
    included, give the simulator's book."""
    capture, depths, stream = _session(FaultRule(book_drop_every=5))
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.open()
    depth_snapshot(capture.book, 5000, FaultBook(), ledger, "binance")
    ledger.close()
    for _ in range(50):
        _send(capture, depths, stream, 1)
    assert any(entry.fault == "dropped" for entry in capture.entries)
    entries = read_book_ledger(tmp_path / "ledger.jsonl") + capture.entries
    assert client_top(rebuild(entries, None), None) == true_top(capture.book, None)
