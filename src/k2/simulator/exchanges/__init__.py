"""The simulator side of each exchange, found through the exchange registry.

Each entry of :data:`k2.exchanges.EXCHANGES` names its simulator package
(``k2.simulator.exchanges.<exchange>``), which has the same modules as every other:

- ``settings.py``: ``SECTION``, the exchange's part of the simulator's settings, a frozen
  dataclass derived from :class:`ExchangeSimSettings` (the symbols it lists, its own limits, the
  connection protocols it speaks); each field is also an option of ``k2 simulate``;
- ``instruments.py``: ``catalog()``, every instrument it can list, and ``inferred()``, the
  instrument of a replayed symbol the catalogue lacks;
- ``server.py``: ``routes()``, its WebSocket and REST endpoints on the simulator's one port,
  ``urls()``, where clients reach them, and ``examples()``, URLs worth printing at start;
- ``replay.py``: its trades in recordings (cryptofeed frames and ledger lines);
- its protocol sessions and REST endpoints, which those modules use.

This module is where the simulator finds them: the markets, routes, URLs, settings, command-line
options, fault protocols and replay formats are all derived from the one list of exchanges.
Packages are imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, cast

from k2.exchanges import EXCHANGES, exchange_entry

if TYPE_CHECKING:
    from aiohttp import web

    from k2.simulator.instruments import Instrument
    from k2.simulator.replay import RecordedTrade
    from k2.simulator.session import Session, SimContext

Role = Literal["settings", "instruments", "server", "replay"]
# The simulator's WebSocket upgrade: a request and the session to run on the socket.
Serve = Callable[
    ["web.Request", Callable[["web.WebSocketResponse"], "Session"]], Awaitable["web.StreamResponse"]
]


@dataclass(frozen=True, slots=True)
class ExchangeSimSettings:
    """One exchange's part of the simulator's settings.

    ``symbols`` are the symbols it lists (None: its whole universe; ``symbols_help`` says so on
    the command line); a subclass adds the exchange's own limits and timings, each field with a
    ``help`` (and, when the option is not the field's name, a ``flag``) in its metadata, so
    ``k2 simulate --<exchange>-<flag>`` sets it. ``connections`` are the protocols of its
    connections, which fault rules name.
    """

    connections: ClassVar[tuple[str, ...]] = ()
    symbols_help: ClassVar[str] = "Symbols to list (comma-separated); default: every one."
    symbols: tuple[str, ...] | None = None

    def validate(self) -> None:
        """Refuse values that cannot work, with the option to fix in the message."""


class InstrumentsModule(Protocol):
    """``instruments.py`` of an exchange's simulator package."""

    def catalog(self) -> tuple[Instrument, ...]:
        """Every instrument the exchange can list, the most traded first (cached)."""
        ...

    def inferred(self, symbol: str, price: str, qty: str) -> Instrument:
        """The instrument of a replayed symbol the catalogue lacks, shaped by its trades."""
        ...

    # Asset codes with a meaning of their own on the exchange (legacy codes, quote assets):
    # never the base of a generated instrument, on any exchange.
    RESERVED_ASSETS: frozenset[str]


class ServerModule(Protocol):
    """``server.py`` of an exchange's simulator package."""

    def routes(self, ctx: SimContext, serve: Serve) -> list[web.RouteDef]:
        """Its WebSocket and REST endpoints, on the simulator's shared state."""
        ...

    def urls(self, http_base: str, ws_base: str) -> dict[str, str]:
        """Where clients reach its endpoints, by name (``<exchange>_<what>``)."""
        ...

    def examples(self, ws_base: str) -> dict[str, str]:
        """Further URLs worth printing at start (a subscription in the URL, say)."""
        ...


class ReplayModule(Protocol):
    """``replay.py`` of an exchange's simulator package."""

    def cryptofeed_trades(self, at_us: int, frame: object) -> Iterable[RecordedTrade]:
        """The trades of one received frame of a cryptofeed recording (none for others)."""
        ...

    def ledger_trades(self, line: Mapping[str, Any]) -> Iterable[RecordedTrade]:
        """The trades of one K2 JSONL (ledger) line of the exchange."""
        ...


def _module(exchange: str, role: Role) -> ModuleType:
    return importlib.import_module(f"{exchange_entry(exchange).simulator_package}.{role}")


def section_type(exchange: str) -> type[ExchangeSimSettings]:
    """The exchange's settings section class."""
    return cast(type[ExchangeSimSettings], _module(exchange, "settings").SECTION)


def sections() -> dict[str, type[ExchangeSimSettings]]:
    """Every exchange's settings section, in the registry's order."""
    return {name: section_type(name) for name in EXCHANGES}


def instruments(exchange: str) -> InstrumentsModule:
    return cast(InstrumentsModule, _module(exchange, "instruments"))


def server(exchange: str) -> ServerModule:
    return cast(ServerModule, _module(exchange, "server"))


def replay(exchange: str) -> ReplayModule:
    return cast(ReplayModule, _module(exchange, "replay"))


def connection_protocols() -> tuple[str, ...]:
    """The protocol of every kind of connection the simulator serves (``kraken-v1``, ...)."""
    return tuple(protocol for name in EXCHANGES for protocol in section_type(name).connections)


def fault_protocols() -> tuple[str, ...]:
    """What a fault rule may name: each exchange (all its connections) and each protocol."""
    names = (item for name in EXCHANGES for item in (name, *section_type(name).connections))
    return tuple(dict.fromkeys(names))
