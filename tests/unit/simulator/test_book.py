"""The simulated order book: deterministic for a seed, never crossed, its past recoverable, and
what a subscription at a depth is sent rebuilds the exchange's book at that depth."""

from __future__ import annotations

from pathlib import Path

from k2.simulator.book import LEVELS, WARMUP_STEPS, Levels, SymbolBook
from k2.simulator.exchanges.binance.instruments import BINANCE_INSTRUMENTS
from k2.simulator.exchanges.kraken.instruments import KRAKEN_INSTRUMENTS
from k2.simulator.faults import FaultBook, FaultRule
from k2.simulator.ledger import BookLedgerEntry, Ledger, read_book_ledger, read_ledger
from k2.simulator.market import SymbolGenerator
from tests.unit.simulator.books import SEED, START_US, Capture

XBT = KRAKEN_INSTRUMENTS[0]


def _stepped(seed: int, trades: int) -> SymbolBook:
    book = SymbolBook(XBT, seed, 800_000, START_US, 1_000)
    generated, _ = SymbolGenerator(XBT, seed).generate(trades, START_US)
    book.follow(generated, START_US)
    return book


def test_a_seed_gives_the_same_book_through_every_step() -> None:
    """Two books of one seed driven by the same trades take the same steps; another seed does
    not."""
    first, second, other = _stepped(SEED, 500), _stepped(SEED, 500), _stepped(SEED + 1, 500)
    assert first.steps == second.steps
    assert first.bids.top(None) == second.bids.top(None)
    assert first.steps != other.steps


def test_the_book_stays_uncrossed_near_its_size_with_one_id_per_change() -> None:
    """After every step the best bid is below the best ask, each side holds at most its target
    of levels, and the update ids run without a hole, one per level change."""
    book = SymbolBook(XBT, SEED, 800_000, START_US, 1_000)
    trades, _ = SymbolGenerator(XBT, SEED).generate(2_000, START_US)
    for trade in trades:
        book.follow([trade], START_US)
        bid, ask = book.bids.best(), book.asks.best()
        assert bid is not None and ask is not None and bid < ask
        assert len(book.bids) <= LEVELS and len(book.asks) <= LEVELS
    assert len(book.steps) >= WARMUP_STEPS + 1_000
    for before, after in zip(book.steps, book.steps[1:], strict=False):
        assert after.first_id == before.last_id + 1
        assert after.last_id - after.first_id + 1 == len(after.changes)


def test_the_stale_state_replays_into_the_current_book() -> None:
    """The oldest state the book knows, with every retained step applied again, is the book
    now; its update id is the one before the oldest step."""
    book = _stepped(SEED, 300)
    update_id, bids, asks = book.stale()
    assert update_id == book.steps[0].first_id - 1
    for step in book.steps:
        for change in step.changes:
            (bids if change.bid else asks).set(change.price, change.lots)
    assert bids.top(None) == book.bids.top(None) and asks.top(None) == book.asks.top(None)


def _client_side(levels: Levels, changes: list[tuple[int, int]], depth: int, cut: bool) -> None:
    for price, lots in changes:
        levels.set(price, lots)
    if cut:
        for price, _ in levels.top(None)[depth:]:
            levels.set(price, 0)


def test_a_view_sends_what_rebuilds_the_top_of_the_book() -> None:
    """At a depth, a client applying what its view is sent holds the exchange's top levels after
    every step: cutting the book itself (Kraken), or told every removal (explicit removals)."""
    book = SymbolBook(XBT, SEED, 800_000, START_US, 1_000)
    trades, _ = SymbolGenerator(XBT, SEED).generate(1_500, START_US)
    for depth, explicit in ((10, False), (25, True), (3, False)):
        view = book.view(depth, explicit_removals=explicit)
        bids, asks = Levels(True), Levels(False)
        for price, lots in book.bids.top(depth):
            bids.set(price, lots)
        for price, lots in book.asks.top(depth):
            asks.set(price, lots)
        for trade in trades[:500]:
            start = book.step_end
            book.follow([trade], START_US)
            steps = book.steps_from(start) or []
            sent = view.advance(steps)
            _client_side(bids, [(c.price, c.lots) for c in sent if c.bid], depth, not explicit)
            _client_side(asks, [(c.price, c.lots) for c in sent if not c.bid], depth, not explicit)
            assert bids.top(None) == book.bids.top(depth)
            assert asks.top(None) == book.asks.top(depth)
        trades = trades[500:]


def test_an_exchange_fault_serves_stale_snapshots_only_as_many_times_as_asked() -> None:
    """A stale-snapshot rule is the exchange's: it serves its count to REST requests of the
    exchange it names, whichever connections exist."""
    faults = FaultBook((FaultRule(protocol="binance", stale_snapshots=2),))
    assert not faults.take_stale_snapshot("kraken")
    assert [faults.take_stale_snapshot("binance") for _ in range(3)] == [True, True, False]
    faults.add_exchange_faults(FaultRule(stale_snapshots=1))
    faults.clear()
    assert not faults.take_stale_snapshot("binance")


def test_book_lines_share_the_ledger_without_disturbing_trade_readers(tmp_path: Path) -> None:
    """Book entries are JSON lines of their own kind: the trade reader skips them and the book
    reader gives them back whole."""
    capture = Capture("binance", BINANCE_INSTRUMENTS[0])
    entry = BookLedgerEntry(
        "binance", "binance", "BTCUSDT", capture.name, 5, "update", 10, 12, 4,
        (("1.00000000", "0.00000000"),), (), None, "dropped",
    )  # fmt: skip
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.open()
    ledger.write([entry])
    ledger.close()
    assert read_ledger(tmp_path / "ledger.jsonl") == []
    assert read_book_ledger(tmp_path / "ledger.jsonl") == [entry]
