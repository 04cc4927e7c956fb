"""Coinbase's spot products in the simulator (``BTC-USD``): prices printed to the quote
increment, sizes to 8 decimals, and no ``-USDC`` instruments of their own (the REST list adds
each ``-USD`` product's ``-USDC`` twin as an alias, whose market data is the ``-USD`` one's)."""

from __future__ import annotations

import functools

from k2.exchanges.coinbase import EXCHANGE
from k2.simulator.instruments import Instrument, recorded_shape, universe

UNIVERSE_SIZE = 640  # about as many spot products as Coinbase lists (ccxt quotes num_products 646)
RESERVED_ASSETS: frozenset[str] = frozenset()  # Coinbase names assets by their usual codes
_QUOTES = ("USD", "EUR", "USDT", "BTC", "GBP", "ETH")
ALIAS_QUOTE, ALIASED_QUOTE = "USDC", "USD"  # BTC-USDC reads as BTC-USD on market channels


def _coinbase(
    symbol: str, pdec: int, low: str, high: str, lots: tuple[int, int], qdec: int = 8
) -> Instrument:
    base, quote = symbol.split("-")
    return Instrument(EXCHANGE, symbol, base, quote, pdec, qdec, pdec, qdec, low, high, *lots)


COINBASE_INSTRUMENTS = (
    _coinbase("BTC-USD", 2, "60000", "100000", (1_000, 200_000_000)),
    _coinbase("ETH-USD", 2, "2000", "4000", (10_000, 5_000_000_000)),
    _coinbase("SOL-USD", 2, "100", "250", (100_000, 50_000_000_000)),
    _coinbase("DOGE-USD", 5, "0.05", "0.5", (10_000_000_000, 500_000_000_000_000), 2),
    _coinbase("ADA-USD", 4, "0.3", "1.2", (100_000_000, 200_000_000_000), 2),
    _coinbase("BTC-EUR", 2, "55000", "90000", (1_000, 100_000_000)),
)


def _generated(
    base: str, quote: str, pdec: int, low: str, high: str, lots: tuple[int, int]
) -> Instrument:
    return _coinbase(f"{base}-{quote}", pdec, low, high, lots)


@functools.cache
def catalog() -> tuple[Instrument, ...]:
    """The hand-written products, then generated ones up to :data:`UNIVERSE_SIZE`."""
    return universe(EXCHANGE, COINBASE_INSTRUMENTS, UNIVERSE_SIZE, _QUOTES, _generated)


def inferred(symbol: str, price: str, qty: str) -> Instrument:
    """A replayed product the catalog lacks, named ``BASE-QUOTE``."""
    pdec, qdec = recorded_shape(price, qty)
    base, _, quote = symbol.partition("-")
    return Instrument(EXCHANGE, symbol, base, quote, pdec, qdec, pdec, qdec, price, price, 1, 1)
