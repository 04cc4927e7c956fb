"""The instruments the simulator lists: reference data for each venue, and its number formats.

One :class:`Instrument` describes a tradable pair on one venue: how the venue spells it on each
protocol, the tick and lot precision that trades respect, how many digits the venue prints in its
decimal strings, and the realistic price band and trade sizes the synthetic market walks within.
The same record feeds the WebSocket protocols, the REST reference data (Kraken AssetPairs, Binance
exchangeInfo) and the generator, so a client that reads the reference data first and then
subscribes sees one consistent venue.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from k2.domain import canonical_asset
from k2.exchanges import EXCHANGE_NAMES
from k2.exchanges.binance.normalise import QUOTE_ASSETS, split_symbol

KRAKEN = "kraken"
BINANCE = "binance"
EXCHANGES = EXCHANGE_NAMES
# Listed symbols of the full universes, about as many as the venues list.
UNIVERSE_SIZE = {KRAKEN: 700, BINANCE: 2000}

# Kraken's REST asset codes for the legacy assets that carry an X/Z prefix.
_KRAKEN_LEGACY_ASSETS = {
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


@dataclass(frozen=True, slots=True)
class Instrument:
    """One pair on one venue.

    ``symbol`` is the venue's own WebSocket spelling (Kraken v1 ``wsname`` such as ``XBT/USD``,
    Binance ``BTCUSDT``); ``v2_symbol`` the Kraken v2 spelling (``BTC/USD``). Prices are integer
    ticks of ``10**-price_decimals`` and sizes integer lots of ``10**-lot_decimals``; the
    ``*_text_decimals`` say how many fractional digits the venue prints in its strings (Binance
    always prints 8; Kraken pads prices to a per-pair width). ``low``/``high`` bound the random walk
    as decimal strings; ``min_lots``/``max_lots`` bound trade sizes.
    """

    exchange: str
    symbol: str
    base: str  # the venue's asset code as it appears in the symbol (XBT, BTC, ...)
    quote: str
    price_decimals: int
    lot_decimals: int
    price_text_decimals: int
    qty_text_decimals: int
    low: str
    high: str
    min_lots: int
    max_lots: int

    @property
    def v2_symbol(self) -> str:
        """Kraken v2 spelling: canonical asset codes (``XBT``→``BTC``, ``XDG``→``DOGE``)."""
        return f"{canonical_asset(self.base)}/{canonical_asset(self.quote)}"

    @property
    def altname(self) -> str:
        """Kraken REST alternative name (``XBTUSD``); for Binance the symbol itself."""
        return f"{self.base}{self.quote}"

    @property
    def rest_base(self) -> str:
        """Kraken REST asset id of the base (``XXBT``) or the Binance base asset (``BTC``)."""
        if self.exchange == KRAKEN:
            return _KRAKEN_LEGACY_ASSETS.get(self.base, self.base)
        return self.base

    @property
    def rest_quote(self) -> str:
        if self.exchange == KRAKEN:
            return _KRAKEN_LEGACY_ASSETS.get(self.quote, self.quote)
        return self.quote

    @property
    def rest_key(self) -> str:
        """Kraken's result key (``XXBTZUSD`` for legacy pairs, the altname otherwise)."""
        legacy = self.base in _KRAKEN_LEGACY_ASSETS and self.quote in _KRAKEN_LEGACY_ASSETS
        if self.exchange == KRAKEN and legacy:
            return f"{self.rest_base}{self.rest_quote}"
        return self.altname

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


def _kraken(
    symbol: str, pdec: int, width: int, low: str, high: str, lots: tuple[int, int]
) -> Instrument:
    base, quote = symbol.split("/")
    return Instrument(KRAKEN, symbol, base, quote, pdec, 8, width, 8, low, high, *lots)


def _binance(
    symbol: str, base: str, pdec: int, ldec: int, low: str, high: str, lots: tuple[int, int]
) -> Instrument:
    quote = symbol[len(base) :]
    return Instrument(BINANCE, symbol, base, quote, pdec, ldec, 8, 8, low, high, *lots)


KRAKEN_INSTRUMENTS = (
    _kraken("XBT/USD", 1, 5, "60000", "100000", (5_000, 200_000_000)),
    _kraken("ETH/USD", 2, 5, "2000", "4000", (100_000, 5_000_000_000)),
    _kraken("SOL/USD", 2, 5, "100", "250", (1_000_000, 50_000_000_000)),
    _kraken("XDG/USD", 7, 7, "0.05", "0.5", (1_000_000_000, 5_000_000_000_000)),
    _kraken("ADA/USD", 6, 6, "0.3", "1.2", (500_000_000, 2_000_000_000_000)),
    _kraken("XBT/EUR", 1, 5, "55000", "90000", (5_000, 100_000_000)),
)

BINANCE_INSTRUMENTS = (
    _binance("BTCUSDT", "BTC", 2, 5, "60000", "100000", (1, 200_000)),
    _binance("ETHUSDT", "ETH", 2, 4, "2000", "4000", (1, 500_000)),
    _binance("SOLUSDT", "SOL", 2, 3, "100", "250", (1, 500_000)),
    _binance("BNBUSDT", "BNB", 2, 3, "400", "800", (1, 100_000)),
    _binance("DOGEUSDT", "DOGE", 5, 0, "0.05", "0.5", (1, 200_000)),
    _binance("ADAUSDT", "ADA", 4, 1, "0.3", "1.2", (10, 500_000)),
)

DEFAULT_INSTRUMENTS = {KRAKEN: KRAKEN_INSTRUMENTS, BINANCE: BINANCE_INSTRUMENTS}
_KRAKEN_QUOTES = ("USD", "EUR", "USDT", "USDC", "GBP", "XBT", "ETH", "CAD", "JPY", "AUD", "CHF")
_BINANCE_QUOTES = ("USDT", "USDC", "FDUSD", "BTC", "ETH", "BNB", "TRY", "BRL", "JPY", "DAI")
# (price decimals, low, high, lots): price bands from a micro-cap to a large-cap coin.
_SHAPES = (
    (8, "0.00000100", "0.00009000", (1_000_000_000, 9_000_000_000_000)),
    (6, "0.010000", "0.900000", (100_000_000, 900_000_000_000)),
    (4, "1.0000", "9.0000", (1_000_000, 9_000_000_000)),
    (2, "20.00", "900.00", (10_000, 90_000_000)),
)


@functools.cache
def catalog(exchange: str) -> tuple[Instrument, ...]:
    """Every instrument the simulator can list on ``exchange``: the hand-written ones above
    (the most traded, first), then generated ones up to the venue's universe size. Generated
    from a fixed seed, so the universe is the same in every run; every Binance symbol splits
    into its base and a quote of :data:`~k2.exchanges.binance.normalise.QUOTE_ASSETS`."""
    listed = list(DEFAULT_INSTRUMENTS[exchange])
    taken = {inst.symbol for inst in listed} | {inst.altname for inst in listed}
    rng = random.Random(f"universe/{exchange}")
    quotes = _KRAKEN_QUOTES if exchange == KRAKEN else _BINANCE_QUOTES
    while len(listed) < UNIVERSE_SIZE[exchange]:
        base = "".join(rng.choice("ABCDEFGHIJKLMNOPRSTUVWYZ") for _ in range(rng.randint(3, 5)))
        quote = quotes[min(int(rng.expovariate(0.6)), len(quotes) - 1)]
        pdec, low, high, lots = _SHAPES[rng.randrange(len(_SHAPES))]
        instrument = _generated(exchange, base, quote, pdec, low, high, lots)
        if instrument is None or instrument.symbol in taken or instrument.altname in taken:
            continue
        taken |= {instrument.symbol, instrument.altname}
        listed.append(instrument)
    return tuple(listed)


def _generated(
    exchange: str, base: str, quote: str, pdec: int, low: str, high: str, lots: tuple[int, int]
) -> Instrument | None:
    """A generated instrument, or None for a name a client would read differently."""
    if canonical_asset(base) != base or base in _KRAKEN_LEGACY_ASSETS or base in QUOTE_ASSETS:
        return None
    if exchange == KRAKEN:
        return _kraken(f"{base}/{quote}", pdec, pdec, low, high, lots)
    if split_symbol(base + quote) != (base, quote):
        return None
    return _binance(
        base + quote, base, pdec, 2, low, high, (lots[0] // 10**6 or 1, lots[1] // 10**6)
    )


def default_symbols(exchange: str) -> tuple[str, ...]:
    """Symbols listed by default on ``exchange``: its whole universe."""
    return tuple(inst.symbol for inst in catalog(exchange))


def instruments_for(exchange: str, symbols: tuple[str, ...]) -> tuple[Instrument, ...]:
    """The catalog entries of ``symbols`` on ``exchange``; unknown names raise ``KeyError``."""
    entries = {inst.symbol: inst for inst in catalog(exchange)}
    return tuple(entries[symbol] for symbol in symbols)


def inferred_instrument(exchange: str, symbol: str, price: str, qty: str) -> Instrument:
    """An instrument for a replayed symbol the catalog does not list, shaped by its first trade.

    The decimals are the digits of the recorded strings, so every recorded value is on the
    inferred tick and lot grid and is re-printed exactly as it was received.
    """
    pdec = len(price.partition(".")[2])
    qdec = len(qty.partition(".")[2])
    if exchange == KRAKEN:
        base, _, quote = symbol.partition("/")
    else:
        base, quote = _split_binance(symbol)
    return Instrument(exchange, symbol, base, quote, pdec, qdec, pdec, qdec, price, price, 1, 1)


_BINANCE_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "USD")


def _split_binance(symbol: str) -> tuple[str, str]:
    for quote in _BINANCE_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-3], symbol[-3:]
