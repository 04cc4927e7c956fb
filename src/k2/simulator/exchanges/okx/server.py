"""OKX on the simulator's port: WebSocket ``/ws/v5/business`` (``trades-all``) and
``/ws/v5/public`` (``trades``), as ``wss://ws.okx.com:8443/ws/v5/...``; REST under ``/api/v5/``."""

from __future__ import annotations

from aiohttp import web

from k2.exchanges.okx import EXCHANGE, wire
from k2.simulator.exchanges import Serve
from k2.simulator.exchanges.okx.rest import OkxRest
from k2.simulator.exchanges.okx.settings import section
from k2.simulator.exchanges.okx.ws import OkxBusinessSession, OkxPublicSession
from k2.simulator.session import SimContext


def routes(ctx: SimContext, serve: Serve) -> list[web.RouteDef]:
    """Both WebSocket endpoints and the REST endpoints, on the simulator's shared state."""

    async def business(request: web.Request) -> web.StreamResponse:
        return await serve(request, lambda ws: OkxBusinessSession(ctx, ws, request))

    async def public(request: web.Request) -> web.StreamResponse:
        return await serve(request, lambda ws: OkxPublicSession(ctx, ws, request))

    rest = OkxRest(ctx.markets[EXCHANGE], section(ctx.config).rest_limit, ctx.faults, ctx.ledger)
    return [
        web.get(wire.BUSINESS_PATH, business),
        web.get(wire.PUBLIC_PATH, public),
        *rest.routes(),
    ]


def urls(http_base: str, ws_base: str) -> dict[str, str]:
    """``okx_ws`` is the base clients append ``/business`` or ``/public`` to."""
    return {
        "okx_ws": f"{ws_base}/ws/v5",
        "okx_business": f"{ws_base}{wire.BUSINESS_PATH}",
        "okx_public": f"{ws_base}{wire.PUBLIC_PATH}",
        "okx_rest": http_base,
    }


def examples(ws_base: str) -> dict[str, str]:
    return {}
