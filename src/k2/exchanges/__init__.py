"""Venue packages by exchange name, imported lazily.

Every venue package has the same modules (``wire``, ``parse``, ``normalise``, ``symbols``,
``client``; see :mod:`k2.exchanges.base`). The registry maps an exchange name, or a protocol
name, to its package without importing any venue until it is used, so a process that ingests one
exchange never loads another's code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Literal, cast

from k2.errors import ExchangeError
from k2.exchanges.base import Envelope, ParsedFrame, Protocol_

Role = Literal["wire", "parse", "normalise", "symbols", "client"]
FrameParser = Callable[[str, Envelope, int], ParsedFrame]


@dataclass(frozen=True, slots=True)
class Venue:
    """One exchange: its package, its protocols, and the client class it offers."""

    name: str
    package: str
    protocols: tuple[Protocol_, ...]
    default_protocol: Protocol_
    client_class: str
    options_class: str

    def module(self, role: Role) -> ModuleType:
        """The venue's module for ``role`` (imported on first use)."""
        return importlib.import_module(f"{self.package}.{role}")

    def parser(self) -> FrameParser:
        """``parse_frame(text, envelope, max_chars)`` of this venue (dispatches on protocol)."""
        return cast(FrameParser, self.module("parse").parse_frame)

    def client_type(self) -> type:
        """The venue's :class:`~k2.exchanges.base.FeedClient` implementation."""
        return cast(type, getattr(self.module("client"), self.client_class))

    def options_type(self) -> type:
        """The frozen options dataclass the client takes."""
        return cast(type, getattr(self.module("client"), self.options_class))


VENUES: dict[str, Venue] = {
    "kraken": Venue(
        name="kraken",
        package="k2.exchanges.kraken",
        protocols=("kraken-v2", "kraken-v1"),
        default_protocol="kraken-v2",
        client_class="KrakenFeedClient",
        options_class="KrakenFeedOptions",
    ),
    "binance": Venue(
        name="binance",
        package="k2.exchanges.binance",
        protocols=("binance-trade", "binance-aggtrade"),
        default_protocol="binance-trade",
        client_class="BinanceFeedClient",
        options_class="BinanceFeedOptions",
    ),
}


def venue(name: str) -> Venue:
    """The venue called ``name``; :class:`~k2.errors.ExchangeError` names the known ones."""
    try:
        return VENUES[name]
    except KeyError:
        raise ExchangeError(f"unknown exchange {name!r}; known: {', '.join(VENUES)}") from None


def venue_for_protocol(protocol: str) -> Venue:
    """The venue that speaks ``protocol`` (``kraken-v1``, ``binance-aggtrade``, ...)."""
    for candidate in VENUES.values():
        if protocol in candidate.protocols:
            return candidate
    raise ExchangeError(f"unknown protocol {protocol!r}")
