"""The control endpoints under ``/_sim``: inspect the simulator and inject faults while it runs.

- ``GET /_sim/status``: open connections, per-symbol history heads, the order books clients
  asked for (update id and step count), pending fault rules, ledger count;
- ``POST /_sim/faults`` with a :class:`~k2.simulator.faults.FaultRule` as JSON (e.g.
  ``{"protocol": "kraken-v2", "connections": 1, "stall": "heartbeats"}``): applied to open
  connections first, then to new ones; answers the connections it reached;
- ``DELETE /_sim/faults``: lift every rule;
- ``POST /_sim/loss`` ``{"exchange": "binance", "every": 10, "symbols": ["BTCUSDT"]}``: the exchange
  loses every n-th trade id from its streams (``every: 0`` stops);
- ``POST /_sim/shutdown`` ``{"grace_s": 1.0, "protocol": "binance"}``: a shutdown notice
  (Binance ``serverShutdown``) on every connection whose protocol has one (of ``protocol``);
- ``POST /_sim/drop`` ``{"protocol": "binance"}``: cut open connections now.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from k2.errors import ConfigError
from k2.simulator.faults import FaultRule

if TYPE_CHECKING:
    from k2.simulator.server import Simulator


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":")), status=status, content_type="application/json"
    )


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError as exc:
        raise ConfigError("the request body is not JSON") from exc
    if not isinstance(data, dict):
        raise ConfigError("the request body must be a JSON object")
    return data


def status(sim: Simulator) -> dict[str, Any]:
    """A snapshot of the simulator's state for tests and operators."""
    heads = {
        exchange: {
            symbol: {
                "trades": history.trade_end,
                "last_trade_id": history.trades[-1].trade_id if history.trades else None,
            }
            for symbol, history in market.histories.items()
        }
        for exchange, market in sim.ctx.markets.items()
    }
    books = {
        exchange: {
            symbol: {"update_id": book.update_id, "steps": book.step_end}
            for symbol, book in market.books.items()
        }
        for exchange, market in sim.ctx.markets.items()
    }
    return {
        "urls": sim.urls.as_dict(),
        "connections": [session.describe() for session in sim.sessions()],
        "markets": heads,
        "books": books,
        "pending_faults": sim.ctx.faults.pending(),
        "ledger": {
            "path": None if sim.ledger_path is None else str(sim.ledger_path),
            "entries": sim.ctx.ledger.count,
        },
    }


def admin_routes(sim: Simulator) -> list[web.RouteDef]:
    """The ``/_sim`` routes bound to ``sim``."""

    async def get_status(request: web.Request) -> web.Response:
        return _json(status(sim))

    async def post_faults(request: web.Request) -> web.Response:
        try:
            rule = FaultRule.from_mapping(await _body(request))
        except (ConfigError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"reached": sim.add_fault(rule), "pending": sim.ctx.faults.pending()})

    async def delete_faults(request: web.Request) -> web.Response:
        sim.clear_faults()
        return _json({"cleared": True})

    async def post_loss(request: web.Request) -> web.Response:
        try:
            body = await _body(request)
            exchange, every = body["exchange"], int(body["every"])
            if exchange not in sim.ctx.markets:
                raise ConfigError(f"unknown exchange {exchange!r}")
        except (ConfigError, KeyError, TypeError, ValueError) as exc:
            return _json({"error": f"bad loss request: {exc}"}, 400)
        sim.set_loss(exchange, every, body.get("symbols"))
        return _json({"exchange": exchange, "every": every})

    async def post_shutdown(request: web.Request) -> web.Response:
        try:
            body = await _body(request)
        except ConfigError as exc:
            return _json({"error": str(exc)}, 400)
        grace = body.get("grace_s")
        told = sim.shutdown(body.get("protocol"), None if grace is None else float(grace))
        return _json({"connections": told})

    async def post_drop(request: web.Request) -> web.Response:
        try:
            body = await _body(request)
        except ConfigError as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"dropped": sim.drop(body.get("protocol"))})

    return [
        web.get("/_sim/status", get_status),
        web.post("/_sim/faults", post_faults),
        web.delete("/_sim/faults", delete_faults),
        web.post("/_sim/loss", post_loss),
        web.post("/_sim/shutdown", post_shutdown),
        web.post("/_sim/drop", post_drop),
    ]
