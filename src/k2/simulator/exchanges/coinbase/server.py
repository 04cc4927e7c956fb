"""Coinbase on the simulator's port, under ``/coinbase``: the market data WebSocket at
``/coinbase`` (as ``wss://advanced-trade-ws.coinbase.com``) and the public REST of the Advanced
Trade, App and Exchange APIs beneath it (see :mod:`k2.simulator.exchanges.coinbase.rest`)."""

from __future__ import annotations

from aiohttp import web

from k2.exchanges.coinbase import EXCHANGE
from k2.exchanges.coinbase.adapter import SIMULATOR_PATH
from k2.simulator.exchanges import Serve
from k2.simulator.exchanges.coinbase.rest import CoinbaseRest
from k2.simulator.exchanges.coinbase.settings import section
from k2.simulator.exchanges.coinbase.ws import CoinbaseSession, IpRates
from k2.simulator.session import SimContext


def routes(ctx: SimContext, serve: Serve) -> list[web.RouteDef]:
    """The WebSocket and the REST endpoints, on the simulator's shared state."""
    settings = section(ctx.config)
    rates = IpRates(settings.message_rate)

    async def market_data(request: web.Request) -> web.StreamResponse:
        return await serve(request, lambda ws: CoinbaseSession(ctx, ws, request, rates=rates))

    rest = CoinbaseRest(ctx.markets[EXCHANGE], SIMULATOR_PATH, settings.rest_limit)
    return [web.get(SIMULATOR_PATH, market_data), *rest.routes()]


def urls(http_base: str, ws_base: str) -> dict[str, str]:
    """``coinbase_ws`` is the market data WebSocket; ``coinbase_rest`` the base of every REST
    path (``/api/v3/brokerage/...``, ``/v2/...``, ``/products/{id}/trades``)."""
    return {
        "coinbase_ws": ws_base + SIMULATOR_PATH,
        "coinbase_rest": http_base + SIMULATOR_PATH,
    }


def examples(ws_base: str) -> dict[str, str]:
    return {}
