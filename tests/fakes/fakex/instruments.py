"""The fake exchange lists two symbols."""

from __future__ import annotations

from k2.simulator.instruments import Instrument
from tests.fakes.fakex import EXCHANGE

RESERVED_ASSETS: frozenset[str] = frozenset()
_LISTED = (
    Instrument(EXCHANGE, "BTC-USD", "BTC", "USD", 2, 4, 2, 4, "60000", "70000", 1, 100),
    Instrument(EXCHANGE, "ETH-USD", "ETH", "USD", 2, 4, 2, 4, "2000", "3000", 1, 100),
)


def catalog() -> tuple[Instrument, ...]:
    return _LISTED


def inferred(symbol: str, price: str, qty: str) -> Instrument:
    base, _, quote = symbol.partition("-")
    return Instrument(EXCHANGE, symbol, base, quote, 2, 4, 2, 4, price, price, 1, 1)
