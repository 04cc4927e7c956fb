"""The fake exchange answers one REST path and serves one WebSocket path."""

from __future__ import annotations

from aiohttp import web

from k2.simulator.exchanges import Serve
from k2.simulator.session import Session, SimContext
from tests.fakes.fakex import EXCHANGE


class FakexSession(Session):
    protocol = "fakex-ws"
    exchange = EXCHANGE


def routes(ctx: SimContext, serve: Serve) -> list[web.RouteDef]:
    async def ws(request: web.Request) -> web.StreamResponse:
        return await serve(request, lambda socket: FakexSession(ctx, socket, request))

    async def time(request: web.Request) -> web.Response:
        return web.json_response({"time": 0})

    return [web.get("/fakex/ws", ws), web.get("/fakex/api/time", time)]


def urls(http_base: str, ws_base: str) -> dict[str, str]:
    return {"fakex_ws": f"{ws_base}/fakex/ws", "fakex_rest": f"{http_base}/fakex/api"}


def examples(ws_base: str) -> dict[str, str]:
    return {}
