"""Binance on the simulator's port: raw streams at ``/ws/<stream>[/...]`` (and a bare ``/ws``),
combined streams at ``/stream?streams=a/b``, REST under ``/api/v3/``."""

from __future__ import annotations

from aiohttp import web

from k2.exchanges.binance import EXCHANGE
from k2.simulator.exchanges import Serve
from k2.simulator.exchanges.binance.rest import BinanceRest, json_response
from k2.simulator.exchanges.binance.settings import section
from k2.simulator.exchanges.binance.ws import (
    BadConnectRequestError,
    BinanceSession,
    connect_request,
)
from k2.simulator.session import SimContext


def routes(ctx: SimContext, serve: Serve) -> list[web.RouteDef]:
    """The stream endpoints and the REST endpoints, on the simulator's shared state. A connect
    URL that names malformed streams, or more than a connection may carry, is refused with
    HTTP 400 and Binance's error body before the upgrade."""
    settings = section(ctx.config)

    async def connect(request: web.Request, streams: str, combined: bool) -> web.StreamResponse:
        try:
            asked = connect_request(streams, combined, request.query)
        except BadConnectRequestError as exc:
            return json_response({"code": 2, "msg": str(exc)}, status=400)
        if len(asked.streams) > settings.max_streams:
            return json_response({"code": 2, "msg": "Invalid request: too many streams"}, 400)
        return await serve(request, lambda ws: BinanceSession(ctx, ws, request, connect=asked))

    async def raw(request: web.Request) -> web.StreamResponse:
        return await connect(request, request.match_info.get("streams", ""), False)

    async def combined(request: web.Request) -> web.StreamResponse:
        return await connect(request, request.query.get("streams", ""), True)

    rest = BinanceRest(ctx.markets[EXCHANGE], settings.weight_limit, ctx.faults, ctx.ledger)
    return [
        web.get("/ws", raw),
        web.get("/ws/{streams:.*}", raw),
        web.get("/stream", combined),
        *rest.routes(),
    ]


def urls(http_base: str, ws_base: str) -> dict[str, str]:
    """``binance_ws`` takes ``/ws/<stream>`` or ``/stream?streams=a/b`` appended."""
    return {"binance_ws": ws_base, "binance_rest": http_base}


def examples(ws_base: str) -> dict[str, str]:
    return {
        "binance_raw": f"{ws_base}/ws/btcusdt@trade",
        "binance_comb": f"{ws_base}/stream?streams=btcusdt@trade",
    }
