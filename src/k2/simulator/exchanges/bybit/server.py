"""Bybit on the simulator's port: the spot public stream at ``/v5/public/spot`` (as
``wss://stream.bybit.com/v5/public/spot``) and REST under ``/v5/market/``."""

from __future__ import annotations

from aiohttp import web

from k2.exchanges.bybit import EXCHANGE, wire
from k2.simulator.exchanges import Serve
from k2.simulator.exchanges.bybit.ids import SharedIds
from k2.simulator.exchanges.bybit.rest import BybitRest
from k2.simulator.exchanges.bybit.settings import section
from k2.simulator.exchanges.bybit.ws import BybitSession
from k2.simulator.session import SimContext


def routes(ctx: SimContext, serve: Serve) -> list[web.RouteDef]:
    """The spot stream and the REST endpoints, on the simulator's shared state; both number
    trades with the one :class:`SharedIds` of the market."""
    market = ctx.markets[EXCHANGE]
    ids = SharedIds(market.instruments)

    async def spot(request: web.Request) -> web.StreamResponse:
        return await serve(request, lambda ws: BybitSession(ctx, ws, request, ids=ids))

    rest = BybitRest(market, ids, section(ctx.config).rest_limit)
    return [web.get(wire.WS_PATH, spot), *rest.routes()]


def urls(http_base: str, ws_base: str) -> dict[str, str]:
    return {"bybit_spot": f"{ws_base}{wire.WS_PATH}", "bybit_rest": http_base}


def examples(ws_base: str) -> dict[str, str]:
    return {}
