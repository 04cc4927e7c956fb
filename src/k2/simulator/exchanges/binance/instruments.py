"""Binance's spot symbols in the simulator (``BTCUSDT``): every price and size printed with 8
decimals, and the fills of one taker order aggregated (``aggTrade``)."""

from __future__ import annotations

import functools

from k2.exchanges.binance import EXCHANGE
from k2.exchanges.binance.normalise import QUOTE_ASSETS, split_symbol
from k2.simulator.instruments import Instrument, recorded_shape, universe

UNIVERSE_SIZE = 2000  # about as many symbols as Binance lists
RESERVED_ASSETS = frozenset(QUOTE_ASSETS)
# Quotes of generated symbols (the first most often), and the endings a replayed symbol the
# catalog lacks is split by.
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "USD")


def _binance(
    symbol: str, base: str, pdec: int, ldec: int, low: str, high: str, lots: tuple[int, int]
) -> Instrument:
    quote = symbol[len(base) :]
    return Instrument(
        EXCHANGE, symbol, base, quote, pdec, ldec, 8, 8, low, high, *lots, aggregate_fills=True
    )


BINANCE_INSTRUMENTS = (
    _binance("BTCUSDT", "BTC", 2, 5, "60000", "100000", (1, 200_000)),
    _binance("ETHUSDT", "ETH", 2, 4, "2000", "4000", (1, 500_000)),
    _binance("SOLUSDT", "SOL", 2, 3, "100", "250", (1, 500_000)),
    _binance("BNBUSDT", "BNB", 2, 3, "400", "800", (1, 100_000)),
    _binance("DOGEUSDT", "DOGE", 5, 0, "0.05", "0.5", (1, 200_000)),
    _binance("ADAUSDT", "ADA", 4, 1, "0.3", "1.2", (10, 500_000)),
)


def _generated(
    base: str, quote: str, pdec: int, low: str, high: str, lots: tuple[int, int]
) -> Instrument | None:
    """A generated symbol, or None when Silver's split by quote asset would read it otherwise."""
    if split_symbol(base + quote) != (base, quote):
        return None
    return _binance(
        base + quote, base, pdec, 2, low, high, (lots[0] // 10**6 or 1, lots[1] // 10**6)
    )


@functools.cache
def catalog() -> tuple[Instrument, ...]:
    """The hand-written symbols, then generated ones up to :data:`UNIVERSE_SIZE`; every one
    splits into its base and a quote of :data:`~k2.exchanges.binance.normalise.QUOTE_ASSETS`."""
    return universe(EXCHANGE, BINANCE_INSTRUMENTS, UNIVERSE_SIZE, _QUOTES, _generated)


def _split(symbol: str) -> tuple[str, str]:
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-3], symbol[-3:]


def inferred(symbol: str, price: str, qty: str) -> Instrument:
    """A replayed symbol the catalog lacks, split by its quote's ending."""
    pdec, qdec = recorded_shape(price, qty)
    base, quote = _split(symbol)
    shape = (pdec, qdec, pdec, qdec, price, price, 1, 1)
    return Instrument(EXCHANGE, symbol, base, quote, *shape, aggregate_fills=True)
