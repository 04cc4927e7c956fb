"""Binance spot symbols: the native form (``BTCUSDT``), stream names and canonical symbols.

The reference data is the public REST ``exchangeInfo`` response, read by :func:`fetch_json`. A user
may name a symbol natively (``BTCUSDT``, any case) or canonically (``BTC/USDT``); a name that
matches no listed symbol is refused before any connection is made. This matters more on Binance
than elsewhere: Binance accepts a subscription to a well-formed but nonexistent stream silently and
then sends nothing, so the reference data is the only reliable check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from k2.domain import canonical_asset
from k2.errors import ExchangeError, UnknownSymbolError


@dataclass(frozen=True, slots=True)
class BinanceSymbol:
    """One listed spot symbol."""

    symbol: str  # native, upper case, e.g. BTCUSDT
    base_asset: str  # as Binance lists it, e.g. BTC
    quote_asset: str
    status: str  # TRADING, BREAK, ...

    @property
    def canonical(self) -> str:
        return f"{canonical_asset(self.base_asset)}/{canonical_asset(self.quote_asset)}"


def parse_exchange_info(payload: object) -> dict[str, BinanceSymbol]:
    """Symbols of an ``exchangeInfo`` response keyed by native symbol; raises
    :class:`~k2.errors.ExchangeError` on a bad shape or an exchange error."""
    if not isinstance(payload, dict):
        raise ExchangeError("binance exchangeInfo response is not a JSON object")
    if "code" in payload and "msg" in payload:
        raise ExchangeError(f"binance exchangeInfo returned an error: {payload['msg']}")
    entries = payload.get("symbols")
    if not isinstance(entries, list):
        raise ExchangeError("binance exchangeInfo response has no symbols list")
    listed: dict[str, BinanceSymbol] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        symbol, base, quote = entry.get("symbol"), entry.get("baseAsset"), entry.get("quoteAsset")
        if isinstance(symbol, str) and isinstance(base, str) and isinstance(quote, str):
            status = entry.get("status")
            listed[symbol.upper()] = BinanceSymbol(
                symbol.upper(), base, quote, status if isinstance(status, str) else ""
            )
    return listed


def resolve_symbols(
    requested: Iterable[str], listed: Mapping[str, BinanceSymbol], strict: bool = True
) -> list[BinanceSymbol]:
    """The listed symbols for the requested names, in order; the first unknown name raises
    :class:`~k2.errors.UnknownSymbolError` naming it (without ``strict``, it is left out)."""
    index: dict[str, BinanceSymbol] = {}
    for entry in listed.values():
        index.setdefault(entry.symbol, entry)
        index.setdefault(f"{entry.base_asset}/{entry.quote_asset}".upper(), entry)
        index.setdefault(entry.canonical.upper(), entry)
    resolved: list[BinanceSymbol] = []
    for name in requested:
        found = index.get(name.strip().upper())
        if found is None and strict:
            raise UnknownSymbolError(
                f"binance does not list the symbol {name!r} (not in its exchangeInfo)"
            )
        if found is not None:
            resolved.append(found)
    return resolved


def asset_map(symbols: Iterable[BinanceSymbol]) -> dict[str, tuple[str, str]]:
    """Native symbol → (base, quote), the lookup :func:`normalise.normalise_trade` takes."""
    return {entry.symbol: (entry.base_asset, entry.quote_asset) for entry in symbols}
