"""Bybit spot symbols: the native form (``BTCUSDT``), trade topics and canonical symbols.

The reference data is the public REST ``GET /v5/market/instruments-info?category=spot``
(spot answers every symbol at once; ``limit`` and ``cursor`` do not apply to it), read by
:func:`~k2.transport.http.fetch_json`. A user may name a symbol natively (``BTCUSDT``, any case)
or canonically (``BTC/USDT``); a name that matches no listed symbol is refused before any
connection is made, with the same one-line error Bybit's own refusal gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from k2.domain import canonical_asset
from k2.errors import ExchangeError, UnknownSymbolError
from k2.exchanges.bybit import wire


@dataclass(frozen=True, slots=True)
class BybitSymbol:
    """One listed spot symbol."""

    symbol: str  # native, upper case, e.g. BTCUSDT
    base_coin: str  # as Bybit lists it, e.g. BTC
    quote_coin: str
    status: str  # Trading (instruments-info lists spot symbols that trade)

    @property
    def canonical(self) -> str:
        return f"{canonical_asset(self.base_coin)}/{canonical_asset(self.quote_coin)}"


def parse_instruments(payload: object) -> dict[str, BybitSymbol]:
    """Symbols of an ``instruments-info`` answer keyed by native symbol; raises
    :class:`~k2.errors.ExchangeError` on a bad shape or an error answer (``retCode`` not 0)."""
    if not isinstance(payload, dict):
        raise ExchangeError("bybit instruments-info answer is not a JSON object")
    if payload.get("retCode") != 0:
        raise ExchangeError(f"bybit instruments-info returned an error: {payload.get('retMsg')}")
    result = payload.get("result")
    entries = result.get("list") if isinstance(result, dict) else None
    if not isinstance(entries, list):
        raise ExchangeError("bybit instruments-info answer has no result list")
    listed: dict[str, BybitSymbol] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        symbol, base, quote = entry.get("symbol"), entry.get("baseCoin"), entry.get("quoteCoin")
        if isinstance(symbol, str) and isinstance(base, str) and isinstance(quote, str):
            status = entry.get("status")
            listed[symbol.upper()] = BybitSymbol(
                symbol.upper(), base, quote, status if isinstance(status, str) else ""
            )
    return listed


def resolve_symbols(
    requested: Iterable[str], listed: Mapping[str, BybitSymbol], strict: bool = True
) -> list[BybitSymbol]:
    """The listed symbols for the requested names, in order; the first unknown name raises
    :class:`~k2.errors.UnknownSymbolError` naming it (without ``strict``, it is left out)."""
    index: dict[str, BybitSymbol] = {}
    for entry in listed.values():
        index.setdefault(entry.symbol, entry)
        index.setdefault(f"{entry.base_coin}/{entry.quote_coin}".upper(), entry)
        index.setdefault(entry.canonical.upper(), entry)
    resolved: list[BybitSymbol] = []
    for name in requested:
        found = index.get(name.strip().upper())
        if found is None and strict:
            raise UnknownSymbolError(
                f"bybit does not list the spot symbol {name!r} (not in instruments-info)"
            )
        if found is not None:
            resolved.append(found)
    return resolved


def trading(listing: BybitSymbol) -> bool:
    """Whether a listing trades now (instruments-info ``status`` ``Trading``)."""
    return listing.status == wire.TRADING


def asset_map(symbols: Iterable[BybitSymbol]) -> dict[str, tuple[str, str]]:
    """Native symbol → (base, quote), the lookup :func:`normalise.normalise_trade` takes."""
    return {entry.symbol: (entry.base_coin, entry.quote_coin) for entry in symbols}
