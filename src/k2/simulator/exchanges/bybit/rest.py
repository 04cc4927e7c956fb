"""Bybit v5 public REST endpoints for spot, served from the simulator's shared trade history.

``GET /v5/market/instruments-info`` (``category=spot``: every listed symbol at once, ``Trading``;
a delisted symbol is no longer listed, as spot lists ``Trading`` symbols only; other categories
answer an empty list), ``GET /v5/market/recent-trade`` (``category=spot``, ``symbol``, ``limit``
1 to 60, default 60: the newest trades, newest first, lost ones included, since REST is how a
client recovers what its stream missed, as far as 60 trades reach) and ``GET /v5/market/time``,
in Bybit's ``{"retCode","retMsg","result","retExtInfo","time"}`` envelope. Requests are
counted per 5 s; beyond ``rest_limit`` the answer is HTTP 403 ``access too frequent``, as
Bybit's IP limit answers. Error codes for bad parameters are not documented for these
endpoints; ``10001`` (Bybit's general parameter error) is used with a message naming the
parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from k2.exchanges.bybit import wire
from k2.simulator.exchange import ExchangeMarket, now_us
from k2.simulator.exchanges.bybit.ids import SharedIds
from k2.simulator.exchanges.bybit.ws import SIDES
from k2.simulator.limits import WindowLimit
from k2.simulator.market import SimTrade

_PARAMS_ERROR = 10001
_Handler = Callable[[Mapping[str, str]], str]


def _answer(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/json")


class _RefusedError(Exception):
    """A request Bybit answers with a ``retCode`` other than 0."""


class BybitRest:
    """The REST half of the simulated Bybit spot exchange."""

    def __init__(self, market: ExchangeMarket, ids: SharedIds, limit: int) -> None:
        self.market = market
        self.ids = ids
        self.requests = WindowLimit(limit, 5.0)

    def routes(self) -> list[web.RouteDef]:
        endpoints: dict[str, _Handler] = {
            wire.INSTRUMENTS_PATH: self._instruments,
            wire.RECENT_TRADES_PATH: self._recent_trades,
            "/v5/market/time": self._time,
        }
        return [web.get(path, self._endpoint(handler)) for path, handler in endpoints.items()]

    def _endpoint(self, handler: _Handler) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            if not self.requests.take(1):
                return web.Response(text="access too frequent", status=403)
            try:
                return _answer(handler(request.query))
            except _RefusedError as refusal:
                return _answer(wire.render_error(_PARAMS_ERROR, str(refusal), now_us() // 1000))

        return handle

    def _listed(self) -> list[str]:
        market = self.market
        return [symbol for symbol in market.instruments if symbol not in market.delisted]

    def _instruments(self, query: Mapping[str, str]) -> str:
        category = query.get("category")
        if category not in ("spot", "linear", "inverse", "option"):
            raise _RefusedError("params error: category is invalid")
        wanted = self._listed() if category == wire.CATEGORY else []
        if query.get("symbol"):
            wanted = [symbol for symbol in wanted if symbol == query["symbol"]]
        entries = []
        for symbol in wanted:
            inst = self.market.instruments[symbol]
            entries.append((symbol, inst.base, inst.quote, inst.tick_text, inst.step_text))
        if category != wire.CATEGORY:
            body = {"category": category, "list": [], "nextPageCursor": ""}
            return wire.render_envelope(body, now_us() // 1000)
        return wire.render_instruments(entries, now_us() // 1000)

    def _recent_trades(self, query: Mapping[str, str]) -> str:
        if query.get("category") != wire.CATEGORY:
            raise _RefusedError("params error: category is invalid")
        symbol = query.get("symbol", "")
        history = self.market.histories.get(symbol)
        if history is None:
            raise _RefusedError("params error: symbol invalid")
        raw = query.get("limit", str(wire.RECENT_TRADES_SPOT))
        if not raw.isdigit() or not 1 <= int(raw) <= wire.RECENT_TRADES_SPOT:
            raise _RefusedError("params error: limit is invalid")
        newest = history.trades_from_id(None, int(raw))
        rows = [wire.recent_trade_row(self._fields(symbol, t)) for t in reversed(newest)]
        return wire.render_recent_trades(rows, now_us() // 1000)

    def _fields(self, symbol: str, trade: SimTrade) -> dict[str, Any]:
        return {
            "i": self.ids.text(symbol, trade.trade_id),
            "s": symbol,
            "p": trade.price,
            "v": trade.qty,
            "S": SIDES[trade.side],
            "T": trade.time_us // 1000,
        }

    def _time(self, query: Mapping[str, str]) -> str:
        now = now_us()
        result = {"timeSecond": str(now // 1_000_000), "timeNano": str(now * 1000)}
        return wire.render_envelope(result, now // 1000)
