"""The synthetic market: one deterministic trade history per symbol, shared by every client.

Each symbol has a :class:`SymbolGenerator` (an integer random walk in ticks, sizes in integer lots)
and a :class:`SymbolHistory` (the trades generated so far, bounded by a retention count). Every
WebSocket connection, whatever its protocol, reads the same history through its own cursor, and the
REST endpoints answer from it too, so a gap a client sees on the socket is exactly what it can
backfill over REST.

Determinism: for a given seed and id base, the n-th trade of a symbol always has the same id,
price, size, side and order type, whatever the rate, the batching or the number of clients. Only
times follow the wall clock (a trade is stamped when it is generated). Prices and sizes never pass
through a float: they are integers formatted into exact decimal strings once, when the trade is
generated.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import NamedTuple

from k2.simulator.instruments import Instrument

# Per-order price move, in basis points of the starting price (the scale of the triangular step).
_STEP_BP = 1
_SIZE_TABLE = 4096
_PRICE_TEXTS = 4096  # price strings remembered per symbol
# Fills per taker order: most orders fill once, some sweep two to four resting orders.
_FILLS = (1,) * 14 + (2,) * 3 + (3,) * 2 + (4,)


class SimTrade(NamedTuple):
    """One trade as the exchange's matching engine recorded it.

    ``price`` and ``qty`` are exact decimal strings in the exchange's print format; ``side`` and
    ``ord_type`` describe the taker (``buy``/``sell``, ``limit``/``market``). ``lost`` marks a
    trade the exchange keeps in its REST history but never sends on a WebSocket (the skipped-ids
    fault).
    """

    trade_id: int
    price: str
    qty: str
    time_us: int
    side: str
    ord_type: str
    agg_id: int
    lost: bool = False


class AggTrade(NamedTuple):
    """Binance's aggregate of the fills of one taker order at one price."""

    agg_id: int
    price: str
    qty: str
    first_id: int
    last_id: int
    time_us: int
    side: str
    lost: bool = False


def format_units(units: int, decimals: int, width: int) -> str:
    """``units`` of ``10**-decimals`` as a decimal string with ``width`` fractional digits."""
    if width == 0:
        return str(units)
    whole, frac = divmod(units * 10 ** (width - decimals), 10**width)
    return f"{whole}.{frac:0{width}d}"


def units_formatter(decimals: int, width: int) -> Callable[[int], str]:
    """A fast :func:`format_units` for one fixed ``decimals``/``width`` (the hot path)."""
    if width == 0:
        return str
    scale, modulus = 10 ** (width - decimals), 10**width
    pattern = "%d.%0" + str(width) + "d"

    def format_(units: int) -> str:
        text: str = pattern % divmod(units * scale, modulus)
        return text

    return format_


def units_of(text: str, decimals: int) -> int:
    """The integer number of ``10**-decimals`` units in an exact decimal string."""
    return int(Decimal(text).scaleb(decimals))


class SymbolGenerator:
    """The deterministic trade stream of one symbol.

    Orders are generated one fill at a time so that any batch size yields the same sequence. All
    fills of one order share its price and side; where the instrument aggregates fills (Binance)
    they also share its time and form one aggregate trade, elsewhere (Kraken) each fill is one
    microsecond after the previous one, so per-symbol times strictly increase and time-based
    ``since`` paging never splits equal times.
    """

    def __init__(self, instrument: Instrument, seed: int, id_base: int = 1_000_000) -> None:
        self.instrument = instrument
        self._rng = random.Random(f"{seed}/{instrument.exchange}/{instrument.symbol}")
        rng = self._rng
        self._low = max(1, units_of(instrument.low, instrument.price_decimals))
        self._high = max(self._low + 1, units_of(instrument.high, instrument.price_decimals))
        self._price = self._low + int(rng.random() * (self._high - self._low))
        self._step = max(1, self._price * _STEP_BP // 10_000)
        # Looked up on the first trade (one table per size shape, see size_tables): a listed
        # symbol that never trades (most of an exchange's universe, most of the time) costs nothing.
        self._sizes: tuple[int, ...] = ()
        self._size_texts: tuple[str, ...] = ()
        self._size_seed = f"{seed}/{instrument.exchange}/sizes"
        self._qty_format = units_formatter(instrument.lot_decimals, instrument.qty_text_decimals)
        self._price_format = units_formatter(
            instrument.price_decimals, instrument.price_text_decimals
        )
        self.next_id = id_base + int(rng.random() * 900_000_000)
        self.next_agg_id = self.next_id // 2 + int(rng.random() * 1_000)
        self._aggregate = instrument.aggregate_fills
        self._fills_left = 0
        self._side = "buy"
        self._ord_type = "market"
        self._price_text = ""
        self._order_time = 0
        self._last_time = 0
        self._agg_first = 0
        self._agg_lots = 0
        self._price_texts: dict[int, str] = {}

    @property
    def price(self) -> int:
        """The price of the walk now, in ticks (the next order moves it)."""
        return self._price

    def generate(self, count: int, now_us: int) -> tuple[list[SimTrade], list[AggTrade]]:
        """The next ``count`` trades, stamped from ``now_us``, and the aggregates they complete.

        The hot loop of the simulator: all state lives in locals (an order's draws are made
        inline, in the same order as ever, so a seed gives the same market), sizes and their
        strings come from a precomputed table, a price string is formatted once per order, and
        trades are built as plain tuples.
        """
        trades: list[SimTrade] = []
        aggs: list[AggTrade] = []
        if not self._sizes:
            self._draw_sizes()
        random_ = self._rng.random
        sizes, size_texts, table = self._sizes, self._size_texts, len(self._sizes)
        aggregate, new_tuple, append = self._aggregate, tuple.__new__, trades.append
        fills_left, last_time, next_id = self._fills_left, self._last_time, self.next_id
        agg_id, agg_lots = self.next_agg_id, self._agg_lots
        price, step, low, high = self._price, self._step, self._low, self._high
        price_text, side, ord_type = self._price_text, self._side, self._ord_type
        order_time, agg_first = self._order_time, self._agg_first
        fill_counts, choices = _FILLS, len(_FILLS)
        texts, price_text_of = self._price_texts, self._price_text_of
        for _ in range(count):
            if fills_left == 0:  # a new taker order: move the price, pick side and type
                move = int(random_() * (step + 1)) - int(random_() * (step + 1))
                moved = price + move
                if moved < low or moved > high:
                    moved = min(max(price - move, low), high)
                price, price_text = moved, texts.get(moved) or price_text_of(moved)
                side = "buy" if random_() < 0.5 else "sell"
                ord_type = "market" if random_() < 0.6 else "limit"
                order_time = now_us if now_us > last_time else last_time
                agg_first, agg_lots = next_id, 0
                fills_left = fill_counts[int(random_() * choices)]
            pick = int(random_() * table)
            if aggregate:
                last_time = order_time
            else:
                last_time = now_us if now_us > last_time + 1 else last_time + 1
            append(
                new_tuple(
                    SimTrade,
                    (
                        next_id,
                        price_text,
                        size_texts[pick],
                        last_time,
                        side,
                        ord_type,
                        agg_id,
                        False,
                    ),
                )
            )
            next_id += 1
            agg_lots += sizes[pick]
            fills_left -= 1
            if fills_left == 0:
                if aggregate:
                    aggs.append(
                        AggTrade(
                            agg_id,
                            price_text,
                            self._qty_format(agg_lots),
                            agg_first,
                            next_id - 1,
                            order_time,
                            side,
                        )
                    )
                agg_id += 1
        self._fills_left, self._last_time, self.next_id = fills_left, last_time, next_id
        self.next_agg_id, self._agg_lots = agg_id, agg_lots
        self._price, self._price_text, self._side, self._ord_type = (
            price,
            price_text,
            side,
            ord_type,
        )
        self._order_time, self._agg_first = order_time, agg_first
        return trades, aggs

    def _price_text_of(self, units: int) -> str:
        """The price text of ``units``, remembered (a walk revisits the same few prices)."""
        if len(self._price_texts) >= _PRICE_TEXTS:
            self._price_texts.clear()
        text = self._price_texts[units] = self._price_format(units)
        return text

    def _draw_sizes(self) -> None:
        instrument = self.instrument
        self._sizes, self._size_texts = size_tables(
            self._size_seed,
            instrument.min_lots,
            instrument.max_lots,
            instrument.lot_decimals,
            instrument.qty_text_decimals,
        )


@functools.cache
def size_tables(
    seed: str, min_lots: int, max_lots: int, lot_decimals: int, text_decimals: int
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The trade sizes of one size shape and their texts, drawn once per shape and seed.

    An exchange's generated symbols share a few shapes; drawing 4,096 sizes and formatting them
    per symbol cost seconds of CPU as 2,000 symbols traded for the first time. Symbols of one
    shape still trade different sizes: each picks from the table with its own generator.
    """
    rng = random.Random(f"{seed}/{min_lots}/{max_lots}")
    sizes = _size_table(rng, min_lots, max_lots)
    texts = tuple(format_units(lots, lot_decimals, text_decimals) for lots in sizes)
    return sizes, texts


def _size_table(rng: random.Random, min_lots: int, max_lots: int) -> tuple[int, ...]:
    """Trade sizes spread log-uniformly between the bounds, drawn once from the symbol's seed.

    Floats only shape the distribution here; the sizes themselves are integer lots.
    """
    if max_lots <= min_lots:
        return (min_lots,)
    span = math.log(max_lots / min_lots)
    return tuple(
        max(min_lots, min(max_lots, round(min_lots * math.exp(span * rng.random()))))
        for _ in range(_SIZE_TABLE)
    )


class SymbolHistory:
    """The trades and aggregate trades of one symbol, oldest first, with absolute positions.

    A position counts every trade ever appended, so a cursor stays valid while old trades are
    trimmed; a cursor older than the retained window has fallen behind (:meth:`trades_from`
    reports it). Ids increase with position; lookups by id bisect.
    """

    def __init__(self, instrument: Instrument, retention: int) -> None:
        self.instrument = instrument
        self.retention = max(retention, 1)
        self.trades: list[SimTrade] = []
        self.aggs: list[AggTrade] = []
        self.trade_base = 0
        self.agg_base = 0

    @property
    def trade_end(self) -> int:
        return self.trade_base + len(self.trades)

    @property
    def agg_end(self) -> int:
        return self.agg_base + len(self.aggs)

    def extend(self, trades: Sequence[SimTrade], aggs: Sequence[AggTrade]) -> None:
        """Append new trades and aggregates; trim back to the retention once 25% over it."""
        self.trades.extend(trades)
        self.aggs.extend(aggs)
        slack = self.retention + self.retention // 4 + 1
        if len(self.trades) > slack:
            cut = len(self.trades) - self.retention
            del self.trades[:cut]
            self.trade_base += cut
        if len(self.aggs) > slack:
            cut = len(self.aggs) - self.retention
            del self.aggs[:cut]
            self.agg_base += cut

    def trades_from(self, position: int) -> list[SimTrade] | None:
        """Trades from ``position`` on; ``None`` if some of them were already trimmed."""
        if position < self.trade_base:
            return None
        return self.trades[position - self.trade_base :]

    def aggs_from(self, position: int) -> list[AggTrade] | None:
        """Aggregate trades from ``position`` on; ``None`` if some were already trimmed."""
        if position < self.agg_base:
            return None
        return self.aggs[position - self.agg_base :]

    def recent_visible(self, count: int) -> list[SimTrade]:
        """The last ``count`` trades the exchange would send on a socket (lost ones left out)."""
        found: list[SimTrade] = []
        for trade in reversed(self.trades):
            if len(found) == count:
                break
            if not trade.lost:
                found.append(trade)
        found.reverse()
        return found

    def trades_from_id(self, from_id: int | None, limit: int) -> list[SimTrade]:
        """Up to ``limit`` trades with id >= ``from_id``, or the latest ``limit`` if no id."""
        if from_id is None:
            return self.trades[-limit:] if limit else []
        start = bisect.bisect_left(self.trades, from_id, key=lambda t: t.trade_id)
        return self.trades[start : start + limit]

    def aggs_from_id(self, from_id: int | None, limit: int) -> list[AggTrade]:
        """Up to ``limit`` aggregates with id >= ``from_id``, or the latest ``limit``."""
        if from_id is None:
            return self.aggs[-limit:] if limit else []
        start = bisect.bisect_left(self.aggs, from_id, key=lambda a: a.agg_id)
        return self.aggs[start : start + limit]

    def aggs_in_time(self, start_us: int, end_us: int, limit: int) -> list[AggTrade]:
        """Up to ``limit`` aggregates with ``start_us <= time <= end_us``, oldest first."""
        start = bisect.bisect_left(self.aggs, start_us, key=lambda a: a.time_us)
        out: list[AggTrade] = []
        for agg in self.aggs[start:]:
            if agg.time_us > end_us or len(out) == limit:
                break
            out.append(agg)
        return out

    def trades_after_time(self, since_us: int | None, limit: int) -> list[SimTrade]:
        """Up to ``limit`` trades strictly after ``since_us``, or the latest ``limit``."""
        if since_us is None:
            return self.trades[-limit:] if limit else []
        start = bisect.bisect_right(self.trades, since_us, key=lambda t: t.time_us)
        return self.trades[start : start + limit]
