"""Bybit's spot symbols in the simulator (``BTCUSDT``): prices and sizes printed without
trailing zeros beyond the symbol's precision, each fill its own trade."""

from __future__ import annotations

import functools

from k2.exchanges.bybit import EXCHANGE
from k2.exchanges.bybit.normalise import QUOTE_COINS, split_symbol
from k2.simulator.instruments import Instrument, recorded_shape, universe

UNIVERSE_SIZE = 650  # about as many spot symbols as Bybit lists
RESERVED_ASSETS = frozenset(QUOTE_COINS)
# Quotes of generated symbols (the first most often).
_QUOTES = ("USDT", "USDC", "BTC", "EUR", "ETH", "MNT")


def _bybit(
    symbol: str, base: str, pdec: int, ldec: int, low: str, high: str, lots: tuple[int, int]
) -> Instrument:
    quote = symbol[len(base) :]
    return Instrument(EXCHANGE, symbol, base, quote, pdec, ldec, pdec, ldec, low, high, *lots)


BYBIT_INSTRUMENTS = (
    _bybit("BTCUSDT", "BTC", 1, 6, "60000", "100000", (1, 200_000)),
    _bybit("ETHUSDT", "ETH", 2, 5, "2000", "4000", (1, 500_000)),
    _bybit("SOLUSDT", "SOL", 2, 3, "100", "250", (1, 500_000)),
    _bybit("XRPUSDT", "XRP", 4, 2, "0.4", "3", (100, 500_000)),
    _bybit("DOGEUSDT", "DOGE", 5, 1, "0.05", "0.5", (10, 2_000_000)),
    _bybit("MNTUSDT", "MNT", 4, 2, "0.5", "1.5", (100, 500_000)),
    _bybit("BTCUSDC", "BTC", 1, 6, "60000", "100000", (1, 100_000)),
)


def _generated(
    base: str, quote: str, pdec: int, low: str, high: str, lots: tuple[int, int]
) -> Instrument | None:
    """A generated symbol, or None when Silver's split by quote coin would read it otherwise."""
    if split_symbol(base + quote) != (base, quote):
        return None
    return _bybit(base + quote, base, pdec, 2, low, high, (lots[0] // 10**6 or 1, lots[1] // 10**6))


@functools.cache
def catalog() -> tuple[Instrument, ...]:
    """The hand-written symbols, then generated ones up to :data:`UNIVERSE_SIZE`; every one
    splits into its base and a quote of :data:`~k2.exchanges.bybit.normalise.QUOTE_COINS`."""
    return universe(EXCHANGE, BYBIT_INSTRUMENTS, UNIVERSE_SIZE, _QUOTES, _generated)


def inferred(symbol: str, price: str, qty: str) -> Instrument:
    """A replayed symbol the catalog lacks, split by its quote's ending."""
    pdec, qdec = recorded_shape(price, qty)
    base, quote = split_symbol(symbol) or (symbol[:-4], symbol[-4:])
    shape = (pdec, qdec, pdec, qdec, price, price, 1, 1)
    return Instrument(EXCHANGE, symbol, base, quote, *shape)
