"""One exchange's market: its instruments, the history of each symbol, and where trades come from.

A :class:`ExchangeMarket` owns the per-symbol :class:`~k2.simulator.market.SymbolHistory` that every
connection and REST endpoint of the exchange reads. A source (the synthetic generator or a replayed
recording) produces new trades when the :class:`MarketClock` advances time; the market appends them,
marks the ones the exchange "loses" (the skipped-ids fault), and wakes the connections through
:attr:`ExchangeMarket.pulse`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Iterable, Sequence
from typing import Protocol

import structlog

from k2.simulator.book import SymbolBook
from k2.simulator.instruments import Instrument
from k2.simulator.market import AggTrade, SimTrade, SymbolGenerator, SymbolHistory, units_of

log = structlog.get_logger("k2.simulator")

Batch = tuple[str, list[SimTrade], list[AggTrade]]
# A burst after the event loop was blocked is capped, so a long pause (a suspended process) never
# floods clients; shorter delays are caught up so the long-run rate stays exact.
_MAX_STEP_US = 5_000_000
_BOOK_ID_BASE = 1_000_000_000  # update ids of a book start above this


def now_us() -> int:
    """Wall-clock time in integer microseconds since the epoch."""
    return time.time_ns() // 1_000


class TradeSource(Protocol):
    """Produces the trades that became due by ``now``."""

    def advance(self, now: int, elapsed_us: int) -> list[Batch]:
        """New trades per symbol since the previous call (``elapsed_us`` ago)."""
        ...

    def price(self, symbol: str) -> int | None:
        """The price, in ticks, ``symbol`` trades at now (None when the source does not know)."""
        ...


class SyntheticSource:
    """The random-walk market at a fixed total rate, shared out over the symbols by weight.

    ``rate`` is the simulator's total trades per second and ``share`` the total weight of the
    symbols across all exchanges it is divided among; a symbol of weight ``w`` gets
    ``rate * w / share`` trades per second (every weight is 1 unless ``weights`` says otherwise,
    which spreads the rate evenly). Counting is integer (a per-symbol remainder carries over),
    so the long-run rate is exact. Only symbols with a trade due are visited: each waits in a
    heap keyed by the time its next trade falls due, so a universe of thousands of mostly quiet
    symbols costs nothing per tick. ``limit`` stops a symbol after that many trades.
    """

    def __init__(
        self,
        generators: Sequence[SymbolGenerator],
        rate: int,
        share: int,
        limit: int | None,
        weights: Sequence[int] | None = None,
    ) -> None:
        self._generators = list(generators)
        self._weights = list(weights) if weights is not None else [1] * len(self._generators)
        self._rate = rate
        self._scale = 1_000_000 * max(share, 1)
        self._limit = limit
        self._carry = [0] * len(self._generators)
        self._made = [0] * len(self._generators)
        self._clock = 0  # virtual µs: elapsed time, each step capped
        self._since = [0] * len(self._generators)
        self._due: list[tuple[int, int]] = []
        for index in range(len(self._generators)):
            self._schedule(index)

    def add(self, generator: SymbolGenerator, weight: int) -> None:
        """Start trading one more symbol (a new listing), from now."""
        self._generators.append(generator)
        self._weights.append(weight)
        self._carry.append(0)
        self._made.append(0)
        self._since.append(self._clock)
        self._schedule(len(self._generators) - 1)

    def price(self, symbol: str) -> int | None:
        """The current price of ``symbol``'s random walk, in ticks."""
        for generator in self._generators:
            if generator.instrument.symbol == symbol:
                return generator.price
        return None

    def stop(self, symbol: str) -> None:
        """Stop trading ``symbol`` (a delisting): it never falls due again."""
        for index, generator in enumerate(self._generators):
            if generator.instrument.symbol == symbol:
                self._weights[index] = 0

    def _schedule(self, index: int) -> None:
        speed = self._rate * self._weights[index]  # carry units per µs
        if speed <= 0 or (self._limit is not None and self._made[index] >= self._limit):
            return
        wait = -(-(self._scale - self._carry[index]) // speed)  # ceiling
        heapq.heappush(self._due, (self._clock + max(wait, 1), index))

    def advance(self, now: int, elapsed_us: int) -> list[Batch]:
        self._clock += min(elapsed_us, _MAX_STEP_US)
        clock, due = self._clock, self._due
        batches: list[Batch] = []
        while due and due[0][0] <= clock:
            _, index = heapq.heappop(due)
            speed = self._rate * self._weights[index]
            carry = self._carry[index] + speed * (clock - self._since[index])
            count, self._carry[index] = divmod(carry, self._scale)
            self._since[index] = clock
            if self._limit is not None:
                count = min(count, self._limit - self._made[index])
            if count > 0:
                self._made[index] += count
                generator = self._generators[index]
                trades, aggs = generator.generate(count, now)
                batches.append((generator.instrument.symbol, trades, aggs))
            self._schedule(index)
        return batches


class ExchangeMarket:
    """Every symbol of one exchange and the shared history each protocol and REST endpoint reads."""

    def __init__(
        self, exchange: str, instruments: Iterable[Instrument], retention: int, seed: int = 1
    ) -> None:
        self.exchange = exchange
        self.seed = seed
        self.books: dict[str, SymbolBook] = {}  # created when a client first asks for one
        self.instruments = {inst.symbol: inst for inst in instruments}
        self.histories = {
            symbol: SymbolHistory(inst, retention) for symbol, inst in self.instruments.items()
        }
        self.sources: list[TradeSource] = []
        self.delisted: set[str] = set()  # still in the history (REST), no longer trading
        self.pulse = asyncio.Event()
        self._lose_every: dict[str | None, int] = {}
        self._lose_count: dict[str, int] = {}
        self._lost_ids: dict[str, set[int]] = {}

    def add_instrument(self, instrument: Instrument, retention: int) -> None:
        """List one more symbol (replay of a pair the catalog does not know)."""
        if instrument.symbol not in self.instruments:
            self.instruments[instrument.symbol] = instrument
            self.histories[instrument.symbol] = SymbolHistory(instrument, retention)

    def book(self, symbol: str) -> SymbolBook:
        """The order book of ``symbol`` (listed), created on first demand around its last trade
        price (before any trade, the price its source would trade at next, or the middle of its
        price band)."""
        found = self.books.get(symbol)
        if found is None:
            instrument = self.instruments[symbol]
            trades = self.histories[symbol].trades
            prices = [source.price(symbol) for source in self.sources]
            if trades:
                center = units_of(trades[-1].price, instrument.price_decimals)
            elif any(price is not None for price in prices):
                center = next(price for price in prices if price is not None)
            else:
                low = units_of(instrument.low, instrument.price_decimals)
                center = (low + units_of(instrument.high, instrument.price_decimals)) // 2
            found = SymbolBook(instrument, self.seed, max(center, 1), now_us(), _BOOK_ID_BASE)
            self.books[symbol] = found
            log.info(
                "sim_book_created", exchange=self.exchange, symbol=symbol, update_id=found.update_id
            )
        return found

    def set_loss(self, every: int, symbols: Iterable[str] | None = None) -> None:
        """From now on, lose every ``every``-th trade (0 stops) of ``symbols`` (default: all).

        A lost trade is in the REST history but never sent on any WebSocket connection, as when
        an exchange drops ids from its stream; clients see a gap they can backfill.
        """
        targets: list[str | None] = [None] if symbols is None else list(symbols)
        for symbol in targets:
            self._lose_every[symbol] = every

    def advance(self, now: int, elapsed_us: int) -> int:
        """Let every source add the trades due by ``now``; wake the connections if any came."""
        added = 0
        for source in self.sources:
            for symbol, trades, aggs in source.advance(now, elapsed_us):
                history = self.histories[symbol]
                trades, aggs = self._apply_loss(symbol, trades, aggs)
                history.extend(trades, aggs)
                added += len(trades)
                book = self.books.get(symbol)
                if book is not None:
                    book.follow(trades, now)
        if added:
            self.pulse.set()
            self.pulse.clear()
        return added

    def _apply_loss(
        self, symbol: str, trades: list[SimTrade], aggs: list[AggTrade]
    ) -> tuple[list[SimTrade], list[AggTrade]]:
        every = self._lose_every.get(symbol, self._lose_every.get(None, 0))
        lost_ids = self._lost_ids.setdefault(symbol, set())
        if every:
            count = self._lose_count.get(symbol, 0)
            marked: list[SimTrade] = []
            for trade in trades:
                count += 1
                if count % every == 0:
                    trade = trade._replace(lost=True)
                    lost_ids.add(trade.trade_id)
                marked.append(trade)
            self._lose_count[symbol] = count
            trades = marked
        if lost_ids and aggs:
            aggs = [
                agg._replace(lost=True)
                if any(agg.first_id <= lost <= agg.last_id for lost in lost_ids)
                else agg
                for agg in aggs
            ]
            done = aggs[-1].last_id
            self._lost_ids[symbol] = {lost for lost in lost_ids if lost > done}
        elif len(lost_ids) > 10_000:
            lost_ids.clear()
        return trades, aggs


class MarketClock:
    """Advances every exchange's market on a fixed tick, in one task for the whole simulator."""

    def __init__(self, markets: Iterable[ExchangeMarket], tick_s: float) -> None:
        self._markets = list(markets)
        self._tick_s = tick_s
        self._task: asyncio.Task[None] | None = None
        self._last: int | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sim-clock")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def step(self) -> int:
        """Advance once, now (also used by tests to generate without waiting)."""
        now = now_us()
        elapsed = 0 if self._last is None else now - self._last
        self._last = now
        return sum(market.advance(now, elapsed) for market in self._markets)

    async def _run(self) -> None:
        self._last = self._last or now_us()
        while True:
            await asyncio.sleep(self._tick_s)
            self.step()
