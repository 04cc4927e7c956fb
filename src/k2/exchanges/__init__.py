"""The exchange registry: the one list of exchanges K2 knows, each package imported lazily.

Every exchange package has the same modules (``wire``, ``parse``, ``normalise``, ``symbols``,
``client``, ``adapter``, ``config``, ``book``; see :mod:`k2.exchanges.base` and
:mod:`k2.exchanges.contract`), and so has its side of the simulator
(``k2.simulator.exchanges.<exchange>``). :data:`EXCHANGES` maps an exchange name to its packages,
its protocols and the names of its classes, without importing any of them until it is used, so a
process that ingests one exchange never loads another's code. Every other list of exchanges
derives from it: the settings' exchange names and sections, the protocols
(:data:`PROTOCOLS`), the CLI's choices, the metrics ports (:mod:`k2.exchanges.factory`), the
simulator's markets, routes, settings and fault protocols. Adding an exchange is its two
packages, its raw schema (``schemas/<exchange>_raw.avsc``) and one entry here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Literal, cast

from k2.errors import ExchangeError
from k2.exchanges.base import Envelope, ParsedFrame, Protocol_

Role = Literal["wire", "parse", "normalise", "symbols", "client", "adapter", "config", "book"]
FrameParser = Callable[[str, Envelope, int], ParsedFrame]


@dataclass(frozen=True, slots=True)
class ExchangeEntry:
    """One exchange: its package, its protocols, and the classes it offers."""

    name: str
    package: str
    protocols: tuple[Protocol_, ...]  # WebSocket protocols first, the default first of all
    rest_protocol: Protocol_  # the protocol of trades read back from REST history
    client_class: str
    options_class: str
    adapter_class: str
    settings_class: str
    simulator_package: str  # its side of the local simulator (k2.simulator.exchanges)

    @property
    def default_protocol(self) -> Protocol_:
        return self.protocols[0]

    def module(self, role: Role) -> ModuleType:
        """The exchange's module for ``role`` (imported on first use)."""
        return importlib.import_module(f"{self.package}.{role}")

    def parser(self) -> FrameParser:
        """``parse_frame(text, envelope, max_chars)`` of this exchange (dispatches on protocol)."""
        return cast(FrameParser, self.module("parse").parse_frame)

    def client_type(self) -> type:
        """The exchange's feed client class."""
        return cast(type, getattr(self.module("client"), self.client_class))

    def options_type(self) -> type:
        """The frozen options dataclass the client takes."""
        return cast(type, getattr(self.module("client"), self.options_class))

    def adapter_type(self) -> type:
        """The exchange's :class:`~k2.exchanges.contract.ExchangeAdapter` implementation."""
        return cast(type, getattr(self.module("adapter"), self.adapter_class))

    def settings_type(self) -> type:
        """The exchange's settings section, a :class:`~k2.exchanges.contract.ExchangeSettings`."""
        return cast(type, getattr(self.module("config"), self.settings_class))


EXCHANGES: dict[str, ExchangeEntry] = {
    "kraken": ExchangeEntry(
        name="kraken",
        package="k2.exchanges.kraken",
        protocols=("kraken-v2", "kraken-v1"),
        rest_protocol="kraken-rest",
        client_class="KrakenFeedClient",
        options_class="KrakenFeedOptions",
        adapter_class="KrakenAdapter",
        settings_class="KrakenSettings",
        simulator_package="k2.simulator.exchanges.kraken",
    ),
    "binance": ExchangeEntry(
        name="binance",
        package="k2.exchanges.binance",
        protocols=("binance-trade", "binance-aggtrade"),
        rest_protocol="binance-rest",
        client_class="BinanceFeedClient",
        options_class="BinanceFeedOptions",
        adapter_class="BinanceAdapter",
        settings_class="BinanceSettings",
        simulator_package="k2.simulator.exchanges.binance",
    ),
    "coinbase": ExchangeEntry(
        name="coinbase",
        package="k2.exchanges.coinbase",
        protocols=("coinbase-advanced",),
        rest_protocol="coinbase-rest",
        client_class="CoinbaseFeedClient",
        options_class="CoinbaseFeedOptions",
        adapter_class="CoinbaseAdapter",
        settings_class="CoinbaseSettings",
        simulator_package="k2.simulator.exchanges.coinbase",
    ),
    "okx": ExchangeEntry(
        name="okx",
        package="k2.exchanges.okx",
        protocols=("okx-trades-all",),
        rest_protocol="okx-rest",
        client_class="OkxFeedClient",
        options_class="OkxFeedOptions",
        adapter_class="OkxAdapter",
        settings_class="OkxSettings",
        simulator_package="k2.simulator.exchanges.okx",
    ),
    "bybit": ExchangeEntry(
        name="bybit",
        package="k2.exchanges.bybit",
        protocols=("bybit-spot",),
        rest_protocol="bybit-rest",
        client_class="BybitFeedClient",
        options_class="BybitFeedOptions",
        adapter_class="BybitAdapter",
        settings_class="BybitSettings",
        simulator_package="k2.simulator.exchanges.bybit",
    ),
}

EXCHANGE_NAMES: tuple[str, ...] = tuple(EXCHANGES)
# Every protocol of every exchange: WebSocket ones, then the protocol of its REST history.
PROTOCOLS: tuple[Protocol_, ...] = tuple(
    protocol for entry in EXCHANGES.values() for protocol in (*entry.protocols, entry.rest_protocol)
)


def exchange_entry(name: str) -> ExchangeEntry:
    """The exchange called ``name``; :class:`~k2.errors.ExchangeError` names the known ones."""
    try:
        return EXCHANGES[name]
    except KeyError:
        raise ExchangeError(f"unknown exchange {name!r}; known: {', '.join(EXCHANGES)}") from None


def entry_for_protocol(protocol: str) -> ExchangeEntry:
    """The entry of the exchange that speaks ``protocol`` (``kraken-v1``, ``binance-aggtrade``,
    ``*-rest``...)."""
    for candidate in EXCHANGES.values():
        if protocol in candidate.protocols or protocol == candidate.rest_protocol:
            return candidate
    raise ExchangeError(f"unknown protocol {protocol!r}")
