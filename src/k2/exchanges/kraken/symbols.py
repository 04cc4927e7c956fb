"""Kraken pair names: v1 ``wsname`` (``XBT/USD``), v2 names (``BTC/USD``) and canonical symbols.

The reference data is the public REST ``AssetPairs`` response, read by :func:`fetch_json`. v1
speaks the ``wsname`` exactly as listed; v2 speaks the same pair with Kraken's legacy asset codes
replaced (``XBT``→``BTC``, ``XDG``→``DOGE``), which is also K2's canonical form. A user may name a
pair any of these ways (``XBT/USD``, ``BTC/USD``, ``XBTUSD``); a name that matches no listed pair
is refused before any connection is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from k2.domain import canonical_asset
from k2.errors import ExchangeError, UnknownSymbolError


@dataclass(frozen=True, slots=True)
class KrakenPair:
    """One listed pair under each of its names."""

    wsname: str  # v1 WebSocket name, e.g. XBT/USD
    v2_name: str  # v2 WebSocket name, e.g. BTC/USD
    altname: str  # REST alternative name, e.g. XBTUSD
    base: str  # canonical base, e.g. BTC
    quote: str  # canonical quote, e.g. USD
    status: str = "online"  # AssetPairs status: online, cancel_only, delisted, ...

    @property
    def canonical(self) -> str:
        return f"{self.base}/{self.quote}"

    def native(self, protocol: str) -> str:
        """The name the given protocol (``kraken-v1``/``kraken-v2``) uses on the wire."""
        return self.wsname if protocol == "kraken-v1" else self.v2_name


def v2_name(wsname: str) -> str:
    """The v2 WebSocket name of a v1 ``wsname``: ``XBT/USD`` → ``BTC/USD``."""
    base, _, quote = wsname.partition("/")
    return f"{canonical_asset(base)}/{canonical_asset(quote)}"


def parse_asset_pairs(payload: object) -> dict[str, KrakenPair]:
    """Pairs of an ``AssetPairs`` response keyed by ``wsname``; pairs without one are skipped
    (dark-pool ``.d`` pairs have none). Raises :class:`~k2.errors.ExchangeError` on a bad shape
    or an exchange error."""
    if not isinstance(payload, dict):
        raise ExchangeError("kraken AssetPairs response is not a JSON object")
    errors = payload.get("error")
    if errors:
        raise ExchangeError(f"kraken AssetPairs returned an error: {errors}")
    result = payload.get("result")
    if not isinstance(result, dict):
        raise ExchangeError("kraken AssetPairs response has no result object")
    pairs: dict[str, KrakenPair] = {}
    for key, entry in result.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("wsname"), str):
            continue
        wsname = entry["wsname"]
        altname = entry.get("altname")
        status = entry.get("status")
        base, _, quote = v2_name(wsname).partition("/")
        pairs[wsname] = KrakenPair(
            wsname=wsname,
            v2_name=v2_name(wsname),
            altname=altname if isinstance(altname, str) else str(key),
            base=base,
            quote=quote,
            status=status if isinstance(status, str) else "online",
        )
    return pairs


def resolve_pairs(
    requested: Iterable[str], listed: Mapping[str, KrakenPair], strict: bool = True
) -> list[KrakenPair]:
    """The listed pairs for the requested names, in order; the first unknown name raises
    :class:`~k2.errors.UnknownSymbolError` naming it (without ``strict``, it is left out)."""
    index: dict[str, KrakenPair] = {}
    for pair in listed.values():
        for name in (pair.wsname, pair.v2_name, pair.altname, pair.wsname.replace("/", "")):
            index.setdefault(name.upper(), pair)
    resolved: list[KrakenPair] = []
    for name in requested:
        found = index.get(name.strip().upper())
        if found is None and strict:
            raise UnknownSymbolError(
                f"kraken does not list the symbol {name!r} (not in its AssetPairs)"
            )
        if found is not None:
            resolved.append(found)
    return resolved
