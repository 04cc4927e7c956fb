"""The simulated L2 order book of one symbol, and what a subscription at some depth sees of it.

A :class:`SymbolBook` is the exchange's true book: integer prices (ticks of ``10**-price_decimals``)
mapped to integer sizes (lots of ``10**-lot_decimals``), never a float. It is created when a
client first asks for the symbol's book (a subscription or a REST snapshot), so the thousands of
symbols nobody watches cost nothing, and from then on it takes one step per trade of the symbol,
around that trade's price: the levels that would cross the trade price are removed, and one to
three levels near the touch are added, resized or removed; a side that grew beyond its target
loses its worst level. Each step consumes one update id per level change (Binance's ``U``/``u``
scheme; the other exchanges' sequence numbers derive from the same ids).

Determinism: the book draws from its own generator, seeded with the simulator's seed, the
exchange and the symbol, and each step is driven by one trade, whose price is itself
deterministic; for a seed, a book created after the same trade goes through the same states,
whatever the timing or the clients. Before any client sees it, the book takes
:data:`WARMUP_STEPS` steps, so it has a past: a stale REST snapshot (a fault) is one of its
earlier states, rebuilt by undoing the steps retained since.

A :class:`BookView` is what one subscription holds of the book: a replica that follows the steps
and, at a depth, the level changes the exchange sends for each one (:meth:`BookView.advance`): the
changes inside the window, the removals of levels that left it by deletion, and the levels that
entered it from below. Levels pushed out by an insert are either left to the client's own cut
(Kraken, Bybit) or removed explicitly (``explicit_removals``).
"""

from __future__ import annotations

import random
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from k2.simulator.instruments import Instrument
from k2.simulator.market import SimTrade, size_tables, units_formatter

LEVELS = 200  # levels a side the book holds about
WARMUP_STEPS = 64  # steps taken before the first client sees the book
# Steps kept for lagging subscriptions and stale snapshots (about 0.7 kB each): a subscription
# paced at 1 s (Binance @depth) falls behind them only past 4,096 trades a second of one symbol.
STEP_RETENTION = 4096


class BookChange(NamedTuple):
    """One level change: the side, the price in ticks and the new size in lots (0 removes)."""

    bid: bool
    price: int
    lots: int


class BookStep(NamedTuple):
    """One step of the book: the update ids it consumed (one per change), when, and what
    changed; ``previous`` holds the size each change replaced (0: the level was new)."""

    first_id: int
    last_id: int
    time_us: int
    changes: tuple[BookChange, ...]
    previous: tuple[int, ...]


class Levels:
    """One side's levels, best first: price → lots, with the sorted keys beside them."""

    __slots__ = ("_bid", "_keys", "lots")

    def __init__(self, bid: bool) -> None:
        self._bid = bid
        self._keys: list[int] = []  # ascending; negated prices for bids
        self.lots: dict[int, int] = {}

    def set(self, price: int, lots: int) -> int:
        """Set a level (0 removes it); the size it had (0: none)."""
        key = -price if self._bid else price
        before = self.lots.get(price, 0)
        if lots:
            if not before:
                insort(self._keys, key)
            self.lots[price] = lots
        elif before:
            del self.lots[price]
            del self._keys[bisect_left(self._keys, key)]
        return before

    def best(self) -> int | None:
        """The best price, or None."""
        if not self._keys:
            return None
        return -self._keys[0] if self._bid else self._keys[0]

    def worst(self) -> int | None:
        """The worst price, or None."""
        if not self._keys:
            return None
        return -self._keys[-1] if self._bid else self._keys[-1]

    def top(self, count: int | None) -> list[tuple[int, int]]:
        """The best ``count`` levels (every one when None), best first, as (price, lots)."""
        keys = self._keys if count is None else self._keys[:count]
        sign = -1 if self._bid else 1
        return [(sign * key, self.lots[sign * key]) for key in keys]

    def copy(self) -> Levels:
        """An independent copy."""
        made = Levels(self._bid)
        made._keys = list(self._keys)
        made.lots = dict(self.lots)
        return made

    def __len__(self) -> int:
        return len(self._keys)


class SymbolBook:
    """The true book of one symbol, stepped by its trades (see the module docstring)."""

    def __init__(
        self, instrument: Instrument, seed: int, center: int, time_us: int, first_id: int
    ) -> None:
        self.instrument = instrument
        self._rng = random.Random(f"{seed}/{instrument.exchange}/{instrument.symbol}/book")
        self._sizes, _ = size_tables(
            f"{seed}/{instrument.exchange}/book",
            instrument.min_lots,
            instrument.max_lots,
            instrument.lot_decimals,
            instrument.qty_text_decimals,
        )
        self._grain = max(1, center // 100_000)  # about 0.1 bp between neighbouring levels
        self.bids = Levels(True)
        self.asks = Levels(False)
        self.update_id = first_id + int(self._rng.random() * 1_000_000)
        self.steps: list[BookStep] = []
        self.step_base = 0  # the position of steps[0] among every step ever taken
        self._fill(center)
        for _ in range(WARMUP_STEPS):
            self.step(center, time_us)

    @property
    def step_end(self) -> int:
        """The position after the last step (a new subscription's cursor)."""
        return self.step_base + len(self.steps)

    def _fill(self, center: int) -> None:
        rng, sizes, grain = self._rng.random, self._sizes, self._grain
        for side, sign in ((self.bids, -1), (self.asks, 1)):
            price = center
            for _ in range(LEVELS):
                price += sign * grain * (1 + int(rng() * 3))
                if price > 0:
                    side.set(price, sizes[int(rng() * len(sizes))])

    def follow(self, trades: Iterable[SimTrade], time_us: int) -> None:
        """One step per trade, around its price."""
        decimals = self.instrument.price_decimals
        for trade in trades:
            whole, _, fraction = trade.price.partition(".")
            # Replayed prices keep their recorded text, with more or fewer decimals.
            self.step(int(whole + fraction[:decimals].ljust(decimals, "0")), time_us)

    def step(self, center: int, time_us: int) -> BookStep | None:
        """Move the book around ``center`` (a trade price in ticks); the step, if anything
        changed."""
        changes: dict[tuple[bool, int], int] = {}
        previous: dict[tuple[bool, int], int] = {}
        bids, asks = self.bids, self.asks
        while (best := bids.best()) is not None and best >= center:
            self._change(bids, True, best, 0, changes, previous)
        while (best := asks.best()) is not None and best <= center:
            self._change(asks, False, best, 0, changes, previous)
        rng, sizes, span = self._rng.random, self._sizes, self._grain * LEVELS
        for _ in range(1 + int(rng() * 3)):
            bid = rng() < 0.5
            side = bids if bid else asks
            offset = 1 + int(rng() * rng() * span)
            price = center - offset if bid else center + offset
            if price <= 0:
                continue
            lots = 0 if price in side.lots and rng() < 0.4 else sizes[int(rng() * len(sizes))]
            self._change(side, bid, price, lots, changes, previous)
        for bid, side in ((True, bids), (False, asks)):
            while len(side) > LEVELS:
                worst = side.worst()
                assert worst is not None
                self._change(side, bid, worst, 0, changes, previous)
        return self._record(changes, previous, time_us)

    @staticmethod
    def _change(
        side: Levels,
        bid: bool,
        price: int,
        lots: int,
        changes: dict[tuple[bool, int], int],
        previous: dict[tuple[bool, int], int],
    ) -> None:
        before = side.set(price, lots)
        previous.setdefault((bid, price), before)
        changes[(bid, price)] = lots

    def _record(
        self,
        changes: dict[tuple[bool, int], int],
        previous: dict[tuple[bool, int], int],
        time_us: int,
    ) -> BookStep | None:
        made = [
            (BookChange(bid, price, lots), previous[(bid, price)])
            for (bid, price), lots in changes.items()
            if lots != previous[(bid, price)]
        ]
        if not made:
            return None
        first = self.update_id + 1
        self.update_id += len(made)
        step = BookStep(
            first,
            self.update_id,
            time_us,
            tuple(change for change, _ in made),
            tuple(before for _, before in made),
        )
        self.steps.append(step)
        if len(self.steps) > STEP_RETENTION + STEP_RETENTION // 4:
            cut = len(self.steps) - STEP_RETENTION
            del self.steps[:cut]
            self.step_base += cut
        return step

    def steps_from(self, position: int) -> list[BookStep] | None:
        """The steps from ``position`` on; None when some were already trimmed."""
        if position < self.step_base:
            return None
        return self.steps[position - self.step_base :]

    def view(self, depth: int | None, *, explicit_removals: bool = False) -> BookView:
        """A subscription's view of the book as it is now."""
        return BookView(self.bids.copy(), self.asks.copy(), depth, explicit_removals)

    def stale(self) -> tuple[int, Levels, Levels]:
        """The oldest state the book still knows (its update id and levels): what a stale
        snapshot serves."""
        bids, asks = self.bids.copy(), self.asks.copy()
        update_id = self.update_id
        for step in reversed(self.steps):
            for change, before in zip(reversed(step.changes), reversed(step.previous), strict=True):
                (bids if change.bid else asks).set(change.price, before)
            update_id = step.first_id - 1
        return update_id, bids, asks


class BookView:
    """One subscription's replica of the book, and the changes it is sent at its depth."""

    def __init__(
        self, bids: Levels, asks: Levels, depth: int | None, explicit_removals: bool
    ) -> None:
        self.bids = bids
        self.asks = asks
        self.depth = depth
        self.explicit_removals = explicit_removals

    def top(self, count: int | None = None) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best ``count`` levels of each side (the view's depth when None)."""
        count = self.depth if count is None else count
        return self.bids.top(count), self.asks.top(count)

    def advance(self, steps: Sequence[BookStep]) -> list[BookChange]:
        """Apply ``steps``; the level changes the exchange sends for them at the view's depth, in
        the order made (one per level, its last size)."""
        depth = self.depth
        if depth is None:
            merged: dict[tuple[bool, int], int] = {}
            for step in steps:
                for bid, price, lots in step.changes:
                    (self.bids if bid else self.asks).set(price, lots)
                    merged.pop((bid, price), None)
                    merged[(bid, price)] = lots
            return [BookChange(bid, price, lots) for (bid, price), lots in merged.items()]
        before = {True: dict(self.bids.top(depth)), False: dict(self.asks.top(depth))}
        touched: dict[tuple[bool, int], None] = {}
        for step in steps:
            for bid, price, lots in step.changes:
                (self.bids if bid else self.asks).set(price, lots)
                touched.pop((bid, price), None)
                touched[(bid, price)] = None
        after = {True: dict(self.bids.top(depth)), False: dict(self.asks.top(depth))}
        sent: list[BookChange] = []
        for bid, price in touched:
            if price in after[bid]:
                if before[bid].get(price) != after[bid][price]:
                    sent.append(BookChange(bid, price, after[bid][price]))
            elif price in before[bid]:
                removed = price not in (self.bids if bid else self.asks).lots
                if removed or self.explicit_removals:
                    sent.append(BookChange(bid, price, 0))
        for bid in (True, False):
            for price, lots in after[bid].items():
                if price not in before[bid] and (bid, price) not in touched:
                    sent.append(BookChange(bid, price, lots))  # came back into the window
            if self.explicit_removals:
                for price in before[bid]:
                    if price not in after[bid] and (bid, price) not in touched:
                        sent.append(BookChange(bid, price, 0))  # pushed out of the window
        return sent


class LevelText:
    """Levels written as an exchange writes them: ``(price, size)`` decimal text with a fixed number
    of fractional digits each, then ``finish`` if given (price texts remembered, as a book
    revisits its prices)."""

    def __init__(
        self,
        instrument: Instrument,
        price_width: int,
        size_width: int,
        finish: Callable[[str], str] | None = None,
    ) -> None:
        price = units_formatter(instrument.price_decimals, price_width)
        size = units_formatter(instrument.lot_decimals, size_width)
        if finish is None:
            self._price, self._size = price, size
        else:  # an exchange that prints no trailing zeros, say
            self._price = lambda units: finish(price(units))
            self._size = lambda lots: finish(size(lots))
        self._prices: dict[int, str] = {}

    def price(self, units: int) -> str:
        """The text of a price in ticks."""
        found = self._prices.get(units)
        if found is None:
            if len(self._prices) > 100_000:
                self._prices.clear()
            found = self._prices[units] = self._price(units)
        return found

    def levels(self, levels: Iterable[tuple[int, int]]) -> list[tuple[str, str]]:
        """``(price, lots)`` levels as text."""
        size = self._size
        return [(self.price(price), size(lots)) for price, lots in levels]

    def changes(
        self, changes: Iterable[BookChange]
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Level changes as the text of their bids and of their asks, in the order made."""
        bids: list[tuple[str, str]] = []
        asks: list[tuple[str, str]] = []
        size = self._size
        for bid, price, lots in changes:
            (bids if bid else asks).append((self.price(price), size(lots)))
        return bids, asks


def printed_text(instrument: Instrument) -> LevelText:
    """Levels written with the decimals the exchange prints its trades with (Binance, Bybit,
    Coinbase)."""
    return LevelText(instrument, instrument.price_text_decimals, instrument.qty_text_decimals)
