"""The instruments the simulator lists: the record of one tradable pair, and every universe.

One :class:`Instrument` describes a tradable pair on one exchange: how the exchange spells it,
the tick and lot precision that trades respect, how many digits it prints in its decimal
strings, and the realistic price band and trade sizes the synthetic market walks within. The
same record feeds the WebSocket protocols, the REST reference data and the generator, so a
client that reads the reference data first and then subscribes sees one consistent exchange.

Each exchange's catalogue lives with the exchange (``k2.simulator.exchanges.<exchange>``): a few
hand-written instruments, the most traded first, then generated ones (:func:`universe`) up to
the exchange's size. The lookups by exchange name below are what the rest of the simulator uses.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from k2.domain import canonical_asset
from k2.exchanges import EXCHANGES
from k2.simulator import exchanges


@dataclass(frozen=True, slots=True)
class Instrument:
    """One pair on one exchange.

    ``symbol`` is the exchange's own WebSocket spelling. Prices are integer ticks of
    ``10**-price_decimals`` and sizes integer lots of ``10**-lot_decimals``; the
    ``*_text_decimals`` say how many fractional digits the exchange prints in its strings.
    ``low``/``high`` bound the random walk as decimal strings; ``min_lots``/``max_lots`` bound
    trade sizes. With ``aggregate_fills`` the fills of one taker order share its time and form
    one aggregate trade (Binance's ``aggTrade``); without, each fill is a microsecond later.
    """

    exchange: str
    symbol: str
    base: str  # the exchange's asset code as it appears in the symbol (XBT, BTC, ...)
    quote: str
    price_decimals: int
    lot_decimals: int
    price_text_decimals: int
    qty_text_decimals: int
    low: str
    high: str
    min_lots: int
    max_lots: int
    aggregate_fills: bool = False

    @property
    def altname(self) -> str:
        """Base and quote without a separator (``XBTUSD``, ``BTCUSDT``)."""
        return f"{self.base}{self.quote}"

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other spellings of the symbol a recording may use (Kraken v2's ``BTC/USD``)."""
        return ()

    @property
    def tick_text(self) -> str:
        """The tick size as an exact decimal string (``0.1``, ``1``)."""
        return _unit_text(self.price_decimals)

    @property
    def step_text(self) -> str:
        """The lot step as an exact decimal string (``0.00000001``, ``1``)."""
        return _unit_text(self.lot_decimals)


def _unit_text(decimals: int) -> str:
    return "1" if decimals == 0 else "0." + "0" * (decimals - 1) + "1"


# (price decimals, low, high, lots): price bands from a micro-cap to a large-cap coin.
_SHAPES = (
    (8, "0.00000100", "0.00009000", (1_000_000_000, 9_000_000_000_000)),
    (6, "0.010000", "0.900000", (100_000_000, 900_000_000_000)),
    (4, "1.0000", "9.0000", (1_000_000, 9_000_000_000)),
    (2, "20.00", "900.00", (10_000, 90_000_000)),
)
# An exchange's generated instrument of (base, quote, price decimals, low, high, lots), or
# None for a name its clients would read differently.
Make = Callable[[str, str, int, str, str, tuple[int, int]], "Instrument | None"]


def reserved_assets() -> frozenset[str]:
    """Asset codes no generated instrument uses as its base, on any exchange."""
    return frozenset().union(*(exchanges.instruments(name).RESERVED_ASSETS for name in EXCHANGES))


def universe(
    exchange: str, listed: Sequence[Instrument], size: int, quotes: Sequence[str], make: Make
) -> tuple[Instrument, ...]:
    """``listed``, then generated instruments up to ``size``: random names and quotes (the
    first quotes most often) and a price shape each, from a fixed seed, so the universe is the
    same in every run; no name is listed twice, and no base is a reserved asset code."""
    found = list(listed)
    taken = {inst.symbol for inst in found} | {inst.altname for inst in found}
    reserved = reserved_assets()
    rng = random.Random(f"universe/{exchange}")
    while len(found) < size:
        base = "".join(rng.choice("ABCDEFGHIJKLMNOPRSTUVWYZ") for _ in range(rng.randint(3, 5)))
        quote = quotes[min(int(rng.expovariate(0.6)), len(quotes) - 1)]
        pdec, low, high, lots = _SHAPES[rng.randrange(len(_SHAPES))]
        if canonical_asset(base) != base or base in reserved:
            continue
        instrument = make(base, quote, pdec, low, high, lots)
        if instrument is None or instrument.symbol in taken or instrument.altname in taken:
            continue
        taken |= {instrument.symbol, instrument.altname}
        found.append(instrument)
    return tuple(found)


def recorded_shape(price: str, qty: str) -> tuple[int, int]:
    """Price and size decimals of a replayed symbol's strings: every recorded value is on the
    inferred grid and is re-printed exactly as it was received."""
    return len(price.partition(".")[2]), len(qty.partition(".")[2])


def catalog(exchange: str) -> tuple[Instrument, ...]:
    """Every instrument the simulator can list on ``exchange``, the most traded first."""
    return exchanges.instruments(exchange).catalog()


def instruments_for(exchange: str, symbols: tuple[str, ...]) -> tuple[Instrument, ...]:
    """The catalog entries of ``symbols`` on ``exchange``; unknown names raise ``KeyError``."""
    entries = {inst.symbol: inst for inst in catalog(exchange)}
    return tuple(entries[symbol] for symbol in symbols)


def inferred_instrument(exchange: str, symbol: str, price: str, qty: str) -> Instrument:
    """An instrument for a replayed symbol the catalog does not list, shaped by its trades."""
    return exchanges.instruments(exchange).inferred(symbol, price, qty)
