"""Kraken's pairs in the simulator: v1 ``wsname`` symbols (``XBT/USD``), the v2 spelling
(``BTC/USD``), and REST names with the legacy X/Z asset codes (``XXBTZUSD``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from k2.domain import canonical_asset
from k2.exchanges.kraken import EXCHANGE
from k2.simulator.instruments import Instrument, recorded_shape, universe

UNIVERSE_SIZE = 700  # about as many pairs as Kraken lists
# Kraken's REST asset codes for the legacy assets that carry an X/Z prefix.
_LEGACY_ASSETS = {
    "XBT": "XXBT",
    "XDG": "XXDG",
    "ETH": "XETH",
    "LTC": "XLTC",
    "XMR": "XXMR",
    "XRP": "XXRP",
    "XLM": "XXLM",
    "ETC": "XETC",
    "ZEC": "XZEC",
    "USD": "ZUSD",
    "EUR": "ZEUR",
    "GBP": "ZGBP",
    "JPY": "ZJPY",
    "CAD": "ZCAD",
}
RESERVED_ASSETS = frozenset(_LEGACY_ASSETS)
_QUOTES = ("USD", "EUR", "USDT", "USDC", "GBP", "XBT", "ETH", "CAD", "JPY", "AUD", "CHF")


@dataclass(frozen=True, slots=True)
class KrakenInstrument(Instrument):
    """A Kraken pair: ``symbol`` is its v1 ``wsname``; Kraken prints 8 size digits and pads
    prices to a per-pair width."""

    @property
    def v2_symbol(self) -> str:
        """Kraken v2 spelling: canonical asset codes (``XBT``→``BTC``, ``XDG``→``DOGE``)."""
        return f"{canonical_asset(self.base)}/{canonical_asset(self.quote)}"

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.v2_symbol,)

    @property
    def rest_base(self) -> str:
        """Kraken REST asset id of the base (``XXBT``)."""
        return _LEGACY_ASSETS.get(self.base, self.base)

    @property
    def rest_quote(self) -> str:
        return _LEGACY_ASSETS.get(self.quote, self.quote)

    @property
    def rest_key(self) -> str:
        """Kraken's result key (``XXBTZUSD`` for legacy pairs, the altname otherwise)."""
        if self.base in _LEGACY_ASSETS and self.quote in _LEGACY_ASSETS:
            return f"{self.rest_base}{self.rest_quote}"
        return self.altname


def as_kraken(instrument: Instrument) -> KrakenInstrument:
    """A listed instrument of the Kraken market, with its Kraken names."""
    if not isinstance(instrument, KrakenInstrument):
        raise TypeError(f"{instrument.symbol} is not a Kraken instrument")
    return instrument


def _kraken(
    symbol: str, pdec: int, width: int, low: str, high: str, lots: tuple[int, int]
) -> KrakenInstrument:
    base, quote = symbol.split("/")
    return KrakenInstrument(EXCHANGE, symbol, base, quote, pdec, 8, width, 8, low, high, *lots)


KRAKEN_INSTRUMENTS = (
    _kraken("XBT/USD", 1, 5, "60000", "100000", (5_000, 200_000_000)),
    _kraken("ETH/USD", 2, 5, "2000", "4000", (100_000, 5_000_000_000)),
    _kraken("SOL/USD", 2, 5, "100", "250", (1_000_000, 50_000_000_000)),
    _kraken("XDG/USD", 7, 7, "0.05", "0.5", (1_000_000_000, 5_000_000_000_000)),
    _kraken("ADA/USD", 6, 6, "0.3", "1.2", (500_000_000, 2_000_000_000_000)),
    _kraken("XBT/EUR", 1, 5, "55000", "90000", (5_000, 100_000_000)),
)


def _generated(
    base: str, quote: str, pdec: int, low: str, high: str, lots: tuple[int, int]
) -> Instrument:
    return _kraken(f"{base}/{quote}", pdec, pdec, low, high, lots)


@functools.cache
def catalog() -> tuple[Instrument, ...]:
    """The hand-written pairs, then generated ones up to :data:`UNIVERSE_SIZE`."""
    return universe(EXCHANGE, KRAKEN_INSTRUMENTS, UNIVERSE_SIZE, _QUOTES, _generated)


def inferred(symbol: str, price: str, qty: str) -> Instrument:
    """A replayed pair the catalog lacks, named ``BASE/QUOTE``."""
    pdec, qdec = recorded_shape(price, qty)
    base, _, quote = symbol.partition("/")
    return KrakenInstrument(
        EXCHANGE, symbol, base, quote, pdec, qdec, pdec, qdec, price, price, 1, 1
    )
