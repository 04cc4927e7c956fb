"""Shared helpers of the simulator's book tests: a connection stand-in that keeps what a book
subscription sends, a market that steps one trade at a time, and the true book as decimals."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from k2.exchanges.book import Level, OrderBook, read_level
from k2.exchanges.booksync import Verdict
from k2.simulator.book import BookStep, SymbolBook
from k2.simulator.exchange import ExchangeMarket
from k2.simulator.faults import BookFault, ConnectionFaults, FaultRule
from k2.simulator.instruments import Instrument
from k2.simulator.ledger import BookLedgerEntry
from k2.simulator.market import SymbolGenerator

SEED = 7
START_US = 1_700_000_000_000_000


class Capture:
    """What a book subscription needs of its connection: the market, the faults, and where its
    messages go (kept here: the frames sent, and every ledger entry, dropped ones included)."""

    dropped = False

    def __init__(self, exchange: str, instrument: Instrument, *rules: FaultRule) -> None:
        self.exchange = exchange
        self.name = f"{exchange}#1"
        self.market = ExchangeMarket(exchange, (instrument,), 1000, SEED)
        self.instrument = instrument
        self.faults = ConnectionFaults()
        for rule in rules:
            self.faults.add(rule)
        self.frames: list[str] = []
        self.entries: list[BookLedgerEntry] = []
        self._trades = SymbolGenerator(instrument, SEED, 1_000)
        self._now = START_US
        self.trade_only()  # the book is created around a trade price

    def trade_only(self) -> None:
        """One more trade in the market, before any book exists."""
        self._now += 1_000
        trades, _ = self._trades.generate(1, self._now)
        self.market.histories[self.instrument.symbol].extend(trades, [])

    @property
    def book(self) -> SymbolBook:
        return self.market.book(self.instrument.symbol)

    def book_fault(self) -> BookFault | None:
        return self.faults.on_book_update()

    async def emit_book(self, frame: str | None, entry: BookLedgerEntry) -> None:
        if frame is not None:
            self.frames.append(frame)
        self.entries.append(entry)

    def trade(self) -> list[BookStep]:
        """One more trade in the market: the steps the book took for it."""
        book = self.book
        start = book.step_end
        self._now += 1_000
        trades, _ = self._trades.generate(1, self._now)
        self.market.histories[self.instrument.symbol].extend(trades, [])
        book.follow(trades, self._now)
        steps = book.steps_from(start)
        assert steps is not None
        return steps


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


def true_top(
    book: SymbolBook, depth: int | None
) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """The best ``depth`` levels of a simulated book as exact decimals."""
    inst = book.instrument
    bids, asks = book.bids.top(depth), book.asks.top(depth)

    def exact(levels: list[tuple[int, int]]) -> list[tuple[Decimal, Decimal]]:
        return [
            (Decimal(price).scaleb(-inst.price_decimals), Decimal(lots).scaleb(-inst.lot_decimals))
            for price, lots in levels
        ]

    return exact(bids), exact(asks)


def client_top(
    book: OrderBook, depth: int | None
) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """The best ``depth`` levels of a verifier's book as exact decimals."""
    bids, asks = (list(book.bids), list(book.asks)) if depth is None else book.top(depth)
    return [(lv.price, lv.size) for lv in bids], [(lv.price, lv.size) for lv in asks]


def rebuild(entries: list[BookLedgerEntry], depth: int | None) -> OrderBook:
    """The book a subscription should hold after its ledger lines: each snapshot replaces it,
    each update (dropped ones included) is applied, then the book is cut to the depth."""
    book = OrderBook(depth)
    for entry in entries:
        bids, asks = _levels(entry.bids), _levels(entry.asks)
        if entry.type == "snapshot":
            book.replace(bids, asks)
        else:
            book.update(bids, asks)
    return book


def _levels(texts: tuple[tuple[str, str], ...]) -> list[Level]:
    levels = [read_level(price, size) for price, size in texts]
    assert all(level is not None for level in levels)
    return [level for level in levels if level is not None]


def follow(
    capture: Capture,
    send: Callable[[list[BookStep]], Coroutine[Any, Any, Any]],
    apply: Callable[[str], list[Verdict]],
    client: Callable[[], OrderBook],
    *,
    steps: int,
    depth: int | None = None,
) -> list[Verdict]:
    """Step the market one trade at a time and ``send`` its steps; ``apply`` each frame sent to
    the client. While no fault has hit, the ``client``'s book must be the simulator's top
    ``depth`` levels after every step. The verdicts, in order."""
    verdicts: list[Verdict] = []
    for _ in range(steps):
        made = capture.trade()
        sent = len(capture.frames)
        run(send(made))
        for frame in capture.frames[sent:]:
            verdicts += apply(frame)
        if not any(entry.fault for entry in capture.entries):
            assert client_top(client(), depth) == true_top(capture.book, depth)
    return verdicts
