"""OKX spot instruments: the reference data, and the names a user may give.

The reference data is ``GET /api/v5/public/instruments?instType=SPOT``: each entry's ``instId``
(``BTC-USDT``), ``baseCcy``/``quoteCcy`` and ``state`` (``live`` trades; ``suspend``,
``preopen`` and ``test`` do not). A user names an instrument natively (``BTC-USDT``, any case)
or canonically (``BTC/USDT``); a name that matches no listed instrument is refused before any
connection is made (the exchange would refuse it too, with event ``error`` code 60018).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from k2.domain import canonical_asset
from k2.errors import ExchangeError, UnknownSymbolError


@dataclass(frozen=True, slots=True)
class OkxInstrument:
    """One listed spot instrument."""

    inst_id: str  # native, e.g. BTC-USDT
    base: str  # baseCcy as listed
    quote: str  # quoteCcy as listed
    state: str  # live, suspend, preopen, test

    @property
    def canonical(self) -> str:
        return f"{canonical_asset(self.base)}/{canonical_asset(self.quote)}"


def parse_instruments(payload: object) -> dict[str, OkxInstrument]:
    """The spot instruments of an instruments response keyed by ``instId``; raises
    :class:`~k2.errors.ExchangeError` on a bad shape or an error code."""
    if not isinstance(payload, dict):
        raise ExchangeError("okx instruments response is not a JSON object")
    if payload.get("code") != "0":
        raise ExchangeError(
            f"okx instruments returned code {payload.get('code')!r}: {payload.get('msg')}"
        )
    entries = payload.get("data")
    if not isinstance(entries, list):
        raise ExchangeError("okx instruments response has no data list")
    listed: dict[str, OkxInstrument] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("instType", "SPOT") != "SPOT":
            continue
        inst_id, base, quote = entry.get("instId"), entry.get("baseCcy"), entry.get("quoteCcy")
        if isinstance(inst_id, str) and isinstance(base, str) and isinstance(quote, str):
            state = entry.get("state")
            listed[inst_id] = OkxInstrument(
                inst_id, base, quote, state if isinstance(state, str) else ""
            )
    return listed


def resolve_instruments(
    requested: Iterable[str], listed: Mapping[str, OkxInstrument], strict: bool = True
) -> list[OkxInstrument]:
    """The listed instruments for the requested names, in order; the first unknown name raises
    :class:`~k2.errors.UnknownSymbolError` naming it (without ``strict``, it is left out)."""
    index: dict[str, OkxInstrument] = {}
    for entry in listed.values():
        index.setdefault(entry.inst_id.upper(), entry)
        index.setdefault(f"{entry.base}/{entry.quote}".upper(), entry)
        index.setdefault(entry.canonical.upper(), entry)
    resolved: list[OkxInstrument] = []
    for name in requested:
        found = index.get(name.strip().upper())
        if found is None and strict:
            raise UnknownSymbolError(
                f"okx does not list the spot instrument {name!r} (not in its SPOT instruments)"
            )
        if found is not None:
            resolved.append(found)
    return resolved
