"""The simulator server: every exchange's WebSocket and REST endpoints on one local port.

Each exchange of the registry brings its own routes (``k2.simulator.exchanges.<exchange>.server``),
today:

=========================  ====================================================================
path                       what answers
=========================  ====================================================================
``/`` (WebSocket)          Kraken v1, as ``wss://ws.kraken.com``
``/v2``                    Kraken v2, as ``wss://ws.kraken.com/v2``
``/ws/<stream>[/...]``     Binance raw streams; ``/stream?streams=a/b`` combined streams
``/0/public/...``          Kraken REST (Trades, AssetPairs, Time, SystemStatus)
``/api/v3/...``            Binance REST (trades, historicalTrades, aggTrades, exchangeInfo, ...)
``/_sim/...``              control: ``GET status``, ``POST|DELETE faults``, ``POST loss``,
                           ``POST shutdown`` (Binance ``serverShutdown``), ``POST drop``
=========================  ====================================================================

:class:`Simulator` is also the Python API tests use: ``async with Simulator(config) as sim:``
starts it in-process (on a free port by default) and exposes :attr:`Simulator.urls`, the ledger
path and fault control; ``k2 simulate`` runs the same class as a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from aiohttp import web

from k2.errors import ConfigError
from k2.exchanges import EXCHANGES
from k2.simulator import exchanges
from k2.simulator.admin import admin_routes
from k2.simulator.exchange import ExchangeMarket, MarketClock, SyntheticSource
from k2.simulator.faults import FaultBook, FaultRule
from k2.simulator.instruments import instruments_for
from k2.simulator.ledger import Ledger
from k2.simulator.market import SymbolGenerator
from k2.simulator.markets import build_markets, symbol_weight
from k2.simulator.session import Session, SimContext
from k2.simulator.settings import SimulatorConfig

log = structlog.get_logger("k2.simulator")
_MAX_MESSAGE = 1 << 20
_CLOSE_TIMEOUT_S = 2.0  # how long a close handshake may take before the socket is cut


@dataclass(frozen=True)
class SimulatorUrls:
    """Where to point a client: each exchange's endpoints by name (``kraken_v2``,
    ``binance_rest``, ...: WebSocket bases per protocol, REST bases per exchange, as each
    exchange's simulator package names them) and ``admin``, the control API. Read them as
    attributes (``urls.kraken_v2``) or as a mapping (:meth:`as_dict`)."""

    endpoints: Mapping[str, str]

    def __getattr__(self, name: str) -> str:
        if name == "endpoints":  # not set yet (a copy being made): no endpoint to find
            raise AttributeError(name)
        try:
            return self.endpoints[name]
        except KeyError:
            known = ", ".join(self.endpoints)
            raise AttributeError(
                f"the simulator has no endpoint {name!r}; known: {known}"
            ) from None

    def as_dict(self) -> dict[str, str]:
        return dict(self.endpoints)


def simulator_urls(host_port: str) -> SimulatorUrls:
    """The URLs of a simulator listening on ``host:port``, every exchange's in registry order."""
    http_base, ws_base = f"http://{host_port}", f"ws://{host_port}"
    endpoints: dict[str, str] = {}
    for name in EXCHANGES:
        endpoints.update(exchanges.server(name).urls(http_base, ws_base))
    endpoints["admin"] = f"{http_base}/_sim"
    return SimulatorUrls(endpoints)


class Simulator:
    """A running simulator: start, point clients at :attr:`urls`, inject faults, stop."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.config.validate()
        configured = self.config.id_base
        self._id_base = time.time_ns() // 1000 if configured is None else configured
        markets = build_markets(dataclasses.replace(self.config, id_base=self._id_base))
        self.ctx = SimContext(
            self.config, markets, Ledger(self.config.ledger_path), FaultBook(self.config.faults)
        )
        self.clock = MarketClock(markets.values(), self.config.tick_s)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the port, open the ledger and start the market clock."""
        self.ctx.ledger.open()
        app = web.Application()
        app.add_routes(self.routes())
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"cannot listen on {self.config.host}:{self.config.port} ({exc.strerror}); "
                "choose another --port (0 picks a free one)"
            ) from exc
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self.clock.start()
        ledger = self.config.ledger_path
        log.info(
            "simulator_started", port=self.port, ledger=None if ledger is None else str(ledger)
        )

    async def stop(self) -> None:
        """Close every connection (close frame 1001), stop serving and close the ledger."""
        await self.clock.stop()
        closing = [session.close(1001, "simulator stopping") for session in self.sessions()]
        await asyncio.gather(*closing, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.ctx.ledger.close()
        log.info("simulator_stopped", port=self.port, ledger_entries=self.ctx.ledger.count)

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- what tests use -------------------------------------------------------------------------

    @property
    def urls(self) -> SimulatorUrls:
        return simulator_urls(f"{self.config.host}:{self.port}")

    @property
    def ledger_path(self) -> Path | None:
        return self.config.ledger_path

    def market(self, exchange: str) -> ExchangeMarket:
        """The shared history of one exchange (what REST serves and every connection reads)."""
        return self.ctx.markets[exchange]

    def sessions(self, protocol: str | None = None) -> list[Session]:
        """Open connections, oldest first, optionally of one protocol (prefix match)."""
        return [
            session
            for session in self.ctx.sessions.values()
            if protocol is None or session.protocol.startswith(protocol)
        ]

    def add_fault(self, rule: FaultRule) -> list[str]:
        """Apply ``rule`` to open connections (oldest first), then to new ones, within its quota.

        Returns the names of the open connections it reached now.
        """
        rule.validate()
        self.ctx.faults.add_exchange_faults(rule)
        reached: list[str] = []
        left = rule.connections
        for session in self.sessions():
            if left is not None and left <= 0:
                break
            if rule.matches(session.protocol):
                session.faults.add(rule)
                reached.append(session.name)
                left = None if left is None else left - 1
        if left is None or left > 0:
            self.ctx.faults.add(dataclasses.replace(rule, connections=left))
        self._wake()
        log.info("sim_fault_added", rule=rule.to_dict(), reached=reached)
        return reached

    def clear_faults(self) -> None:
        """Forget pending rules and lift the rules in force on open connections."""
        self.ctx.faults.clear()
        for session in self.sessions():
            session.faults.active.clear()
        self._wake()

    def set_loss(self, exchange: str, every: int, symbols: list[str] | None = None) -> None:
        """Make ``exchange`` lose every ``every``-th trade id from its streams (0 stops)."""
        self.market(exchange).set_loss(every, symbols)
        log.info("sim_loss_set", exchange=exchange, every=every, symbols=symbols)

    def list_symbol(self, exchange: str, symbol: str) -> None:
        """A new listing: ``symbol`` of the exchange's catalogue appears in the reference data and
        starts trading at the weight of its rank."""
        market = self.market(exchange)
        market.delisted.discard(symbol)
        if symbol in market.instruments:
            return
        (instrument,) = instruments_for(exchange, (symbol,))
        market.add_instrument(instrument, self.config.retention)
        for source in market.sources:
            if isinstance(source, SyntheticSource):
                generator = SymbolGenerator(instrument, self.config.seed, self._id_base)
                source.add(generator, symbol_weight(exchange, symbol, self.config.skew))
        log.info("sim_symbol_listed", exchange=exchange, symbol=symbol)

    def delist_symbol(self, exchange: str, symbol: str) -> None:
        """A delisting: ``symbol`` stops trading and leaves the reference data (Binance lists it
        with status BREAK); its history stays readable over REST."""
        market = self.market(exchange)
        market.delisted.add(symbol)
        for source in market.sources:
            if isinstance(source, SyntheticSource):
                source.stop(symbol)
        log.info("sim_symbol_delisted", exchange=exchange, symbol=symbol)

    def shutdown(self, protocol: str | None = None, grace_s: float | None = None) -> int:
        """Announce a shutdown on every open connection (of ``protocol``) whose protocol has
        such a notice (Binance ``serverShutdown``); they close after the grace time. Returns
        how many were told."""
        told = sum(session.request_shutdown(grace_s) for session in self.sessions(protocol))
        self._wake()
        return told

    def drop(self, protocol: str | None = None) -> int:
        """Cut every open connection (of ``protocol``) at the TCP level, now."""
        sessions = self.sessions(protocol)
        for session in sessions:
            session.drop("requested")
        return len(sessions)

    def step(self) -> int:
        """Generate the trades due now without waiting for the clock's tick."""
        return self.clock.step()

    def _wake(self) -> None:
        for market in self.ctx.markets.values():
            market.pulse.set()
            market.pulse.clear()

    # --- HTTP -----------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """Every exchange's endpoints, in the registry's order, then the control API."""
        routes = []
        for name in EXCHANGES:
            routes += exchanges.server(name).routes(self.ctx, self._serve)
        return [*routes, *admin_routes(self)]

    async def _serve(
        self, request: web.Request, make: Callable[[web.WebSocketResponse], Session]
    ) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            autoping=False, compress=False, max_msg_size=_MAX_MESSAGE, timeout=_CLOSE_TIMEOUT_S
        )
        if not ws.can_prepare(request).ok:
            return _json({"simulator": "k2", "urls": self.urls.as_dict()})
        await ws.prepare(request)
        with contextlib.suppress(ConnectionError):
            await make(ws).serve()
        return ws


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":")), status=status, content_type="application/json"
    )
