"""Kraken on the simulator's port: WebSocket v1 at ``/`` (as ``wss://ws.kraken.com``), v2 at
``/v2`` (as ``wss://ws.kraken.com/v2``), REST under ``/0/public/``."""

from __future__ import annotations

from aiohttp import web

from k2.exchanges.kraken import EXCHANGE
from k2.simulator.exchanges import Serve
from k2.simulator.exchanges.kraken.rest import KrakenRest
from k2.simulator.exchanges.kraken.settings import section
from k2.simulator.exchanges.kraken.ws_v1 import KrakenV1Session
from k2.simulator.exchanges.kraken.ws_v2 import KrakenV2Session
from k2.simulator.session import SimContext


def routes(ctx: SimContext, serve: Serve) -> list[web.RouteDef]:
    """Both WebSocket versions and the REST endpoints, on the simulator's shared state."""

    async def v1(request: web.Request) -> web.StreamResponse:
        return await serve(request, lambda ws: KrakenV1Session(ctx, ws, request))

    async def v2(request: web.Request) -> web.StreamResponse:
        return await serve(request, lambda ws: KrakenV2Session(ctx, ws, request))

    rest = KrakenRest(ctx.markets[EXCHANGE], section(ctx.config).rest_limit)
    return [web.get("/", v1), web.get("/v2", v2), *rest.routes()]


def urls(http_base: str, ws_base: str) -> dict[str, str]:
    return {"kraken_v1": f"{ws_base}/", "kraken_v2": f"{ws_base}/v2", "kraken_rest": http_base}


def examples(ws_base: str) -> dict[str, str]:
    return {}
