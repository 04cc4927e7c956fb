"""OKX's spot instruments in the simulator (``BTC-USDT``): prices and sizes printed as OKX prints
them (no trailing zeros), the fills of one taker order sharing its time and price."""

from __future__ import annotations

import functools

from k2.exchanges.okx import EXCHANGE
from k2.simulator.instruments import Instrument, recorded_shape, universe

UNIVERSE_SIZE = 700  # about as many spot instruments as OKX lists
RESERVED_ASSETS: frozenset[str] = frozenset()  # "-" splits every OKX name: nothing is ambiguous
_QUOTES = ("USDT", "USDC", "BTC", "ETH", "EUR")


def _okx(
    base: str, quote: str, pdec: int, ldec: int, low: str, high: str, lots: tuple[int, int]
) -> Instrument:
    symbol = f"{base}-{quote}"
    return Instrument(
        EXCHANGE, symbol, base, quote, pdec, ldec, pdec, ldec, low, high, *lots,
        aggregate_fills=True,
    )  # fmt: skip


OKX_INSTRUMENTS = (
    _okx("BTC", "USDT", 1, 8, "60000", "100000", (1_000, 200_000_000)),
    _okx("ETH", "USDT", 2, 6, "2000", "4000", (100, 5_000_000)),
    _okx("SOL", "USDT", 2, 6, "100", "250", (1_000, 50_000_000)),
    _okx("DOGE", "USDT", 5, 6, "0.05", "0.5", (1_000_000, 5_000_000_000)),
    _okx("XRP", "USDT", 4, 6, "0.3", "1.2", (100_000, 2_000_000_000)),
    _okx("BTC", "USDC", 1, 8, "60000", "100000", (1_000, 100_000_000)),
)


def _generated(
    base: str, quote: str, pdec: int, low: str, high: str, lots: tuple[int, int]
) -> Instrument:
    return _okx(base, quote, pdec, 4, low, high, (lots[0] // 100 or 1, lots[1] // 100))


@functools.cache
def catalog() -> tuple[Instrument, ...]:
    """The hand-written instruments, then generated ones up to :data:`UNIVERSE_SIZE`."""
    return universe(EXCHANGE, OKX_INSTRUMENTS, UNIVERSE_SIZE, _QUOTES, _generated)


def inferred(symbol: str, price: str, qty: str) -> Instrument:
    """A replayed instrument the catalog lacks, named ``BASE-QUOTE``."""
    pdec, qdec = recorded_shape(price, qty)
    base, _, quote = symbol.partition("-")
    shape = (pdec, qdec, pdec, qdec, price, price, 1, 1)
    return Instrument(EXCHANGE, symbol, base, quote, *shape, aggregate_fills=True)
