"""Binance spot public REST endpoints, served from the simulator's shared trade history and order
books.

``GET /api/v3/trades``, ``/api/v3/historicalTrades`` (``fromId``), ``/api/v3/aggTrades``
(``fromId``, ``startTime``/``endTime``), ``/api/v3/depth`` (the order book snapshot a diff depth
stream is placed on, weighing 5 to 250 by its ``limit``), ``/api/v3/exchangeInfo``,
``/api/v3/ping`` and ``/api/v3/time``, with the exchange's parameters, response shapes, error
bodies and request weights. Request weight is counted per minute and reported in
``X-MBX-USED-WEIGHT-1M``; beyond the configured limit the answer is HTTP 429 with
``Retry-After``, as Binance does. Times are ms unless the request sends ``X-MBX-TIME-UNIT:
MICROSECOND``. Trades the exchange "lost" on its streams are here: REST is how a client backfills
them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web

from k2.exchanges.binance import wire
from k2.simulator.exchange import ExchangeMarket, now_us
from k2.simulator.exchanges.binance.books import depth_snapshot
from k2.simulator.faults import FaultBook
from k2.simulator.instruments import Instrument
from k2.simulator.ledger import Ledger
from k2.simulator.limits import WindowLimit
from k2.simulator.market import AggTrade, SimTrade, SymbolHistory

_WEIGHTS = {
    "trades": 25,
    "historicalTrades": 25,
    "aggTrades": 4,
    "exchangeInfo": 20,
    "ping": 1,
    "time": 1,
}
# (levels a side at most, weight) of a depth snapshot
_DEPTH_WEIGHTS = ((100, 5), (500, 25), (1000, 50), (5000, 250))
_ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"]


_Handler = Callable[[Any, bool], Any]
_Route = Callable[[web.Request], Awaitable[web.Response]]


class _RefusedError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A compact JSON answer, as Binance writes them."""
    body = json.dumps(data, separators=(",", ":"))
    return web.Response(text=body, status=status, content_type="application/json", headers=headers)


def quote_quantity(price: str, qty: str) -> str:
    """``price * qty`` exactly, without trailing zeros (Binance's ``quoteQty``)."""
    product = (Decimal(price) * Decimal(qty)).normalize()
    return format(product, "f")


class BinanceRest:
    """The REST half of the simulated Binance exchange."""

    def __init__(
        self,
        market: ExchangeMarket,
        weight_limit: int,
        faults: FaultBook | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.market = market
        self.weight = WindowLimit(weight_limit, 60.0)
        self.faults = FaultBook() if faults is None else faults
        self.ledger = Ledger(None) if ledger is None else ledger

    def routes(self) -> list[web.RouteDef]:
        endpoints: dict[str, _Handler] = {
            "trades": self._trades,
            "historicalTrades": self._historical_trades,
            "aggTrades": self._agg_trades,
            "exchangeInfo": self._exchange_info,
            "ping": self._ping,
            "time": self._time,
            "depth": self._depth,
        }
        return [
            web.get(f"/api/v3/{name}", self._endpoint(name, handler))
            for name, handler in endpoints.items()
        ]

    def _endpoint(self, name: str, handler: _Handler) -> _Route:
        async def handle(request: web.Request) -> web.Response:
            if not self.weight.take(_weight(name, request.query)):
                limit = self.weight.limit
                msg = (
                    f"Too much request weight used; current limit is {limit} request weight per "
                    "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the "
                    "API."
                )
                headers = {"Retry-After": str(self.weight.retry_after_s())}
                return json_response({"code": -1003, "msg": msg}, 429, headers)
            headers = {"X-MBX-USED-WEIGHT-1M": str(self.weight.used)}
            micros = request.headers.get("X-MBX-TIME-UNIT", "").upper() == "MICROSECOND"
            try:
                data = handler(request.query, micros)
            except _RefusedError as refusal:
                return json_response(
                    {"code": refusal.code, "msg": refusal.msg}, refusal.status, headers
                )
            if isinstance(data, _Text):
                return web.Response(
                    text=data.text, content_type="application/json", headers=headers
                )
            return json_response(data, 200, headers)

        return handle

    # --- parameters ---------------------------------------------------------------------------

    def _history(self, query: Any) -> SymbolHistory:
        symbol = query.get("symbol")
        if not symbol:
            raise _RefusedError(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            )
        history = self.market.histories.get(symbol)
        if history is None:
            raise _RefusedError(400, -1121, "Invalid symbol.")
        return history

    @staticmethod
    def _int(query: Any, name: str, default: int | None) -> int | None:
        raw = query.get(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit():
            raise _RefusedError(
                400,
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is "
                "'^[0-9]{1,20}$'.",
            )
        return int(raw)

    def _limit(self, query: Any) -> int:
        limit = self._int(query, "limit", 500) or 500
        return min(limit, 1000)

    # --- endpoints ----------------------------------------------------------------------------

    def _trades(self, query: Any, micros: bool) -> list[dict[str, Any]]:
        history = self._history(query)
        return [_trade_row(t, micros) for t in history.trades_from_id(None, self._limit(query))]

    def _historical_trades(self, query: Any, micros: bool) -> list[dict[str, Any]]:
        history = self._history(query)
        from_id = self._int(query, "fromId", None)
        trades = history.trades_from_id(from_id, self._limit(query))
        return [_trade_row(trade, micros) for trade in trades]

    def _agg_trades(self, query: Any, micros: bool) -> list[dict[str, Any]]:
        history = self._history(query)
        limit = self._limit(query)
        from_id = self._int(query, "fromId", None)
        start = self._int(query, "startTime", None)
        end = self._int(query, "endTime", None)
        if from_id is None and (start is not None or end is not None):
            scale = 1 if micros else 1_000
            low = 0 if start is None else start * scale
            high = 2**63 if end is None else end * scale + scale - 1
            aggs = history.aggs_in_time(low, high, limit)
        else:
            aggs = history.aggs_from_id(from_id, limit)
        return [_agg_row(agg, micros) for agg in aggs]

    def _exchange_info(self, query: Any, micros: bool) -> dict[str, Any]:
        wanted = list(self.market.instruments)
        if query.get("symbol"):
            wanted = [query["symbol"]]
        elif query.get("symbols"):
            try:
                wanted = list(json.loads(query["symbols"]))
            except ValueError as exc:
                raise _RefusedError(
                    400, -1100, "Illegal characters found in parameter 'symbols'."
                ) from exc
        if any(name not in self.market.instruments for name in wanted):
            raise _RefusedError(400, -1121, "Invalid symbol.")
        return {
            "timezone": "UTC",
            "serverTime": now_us() if micros else now_us() // 1_000,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.weight.limit,
                }
            ],
            "exchangeFilters": [],
            "symbols": [
                _symbol_info(self.market.instruments[name], name in self.market.delisted)
                for name in wanted
            ],
        }

    def _depth(self, query: Any, micros: bool) -> _Text:
        """The order book, ``limit`` levels a side (100 unless asked; above 5000 the answer
        stops at 5000, as Binance's does)."""
        history = self._history(query)
        limit = self._int(query, "limit", None) or wire.DEPTH_DEFAULT_LIMIT
        limit = min(limit, wire.DEPTH_LIMITS[1])
        book = self.market.book(history.instrument.symbol)
        return _Text(depth_snapshot(book, limit, self.faults, self.ledger, self.market.exchange))

    def _ping(self, query: Any, micros: bool) -> dict[str, Any]:
        return {}

    def _time(self, query: Any, micros: bool) -> dict[str, Any]:
        return {"serverTime": now_us() if micros else now_us() // 1_000}


@dataclass(frozen=True, slots=True)
class _Text:
    """A JSON body already rendered."""

    text: str


def _weight(name: str, query: Any) -> int:
    """A request's weight; a depth snapshot weighs more the more levels it asks for."""
    if name != "depth":
        return _WEIGHTS[name]
    raw = query.get("limit", "")
    limit = int(raw) if raw.isdigit() else wire.DEPTH_DEFAULT_LIMIT
    for most, weight in _DEPTH_WEIGHTS:
        if limit <= most:
            return weight
    return _DEPTH_WEIGHTS[-1][1]


def _trade_row(trade: SimTrade, micros: bool) -> dict[str, Any]:
    return {
        "id": trade.trade_id,
        "price": trade.price,
        "qty": trade.qty,
        "quoteQty": quote_quantity(trade.price, trade.qty),
        "time": trade.time_us if micros else trade.time_us // 1_000,
        "isBuyerMaker": trade.side == "sell",
        "isBestMatch": True,
    }


def _agg_row(agg: AggTrade, micros: bool) -> dict[str, Any]:
    return {
        "a": agg.agg_id,
        "p": agg.price,
        "q": agg.qty,
        "f": agg.first_id,
        "l": agg.last_id,
        "T": agg.time_us if micros else agg.time_us // 1_000,
        "m": agg.side == "sell",
        "M": True,
    }


def _eight(text: str) -> str:
    """A decimal string printed with Binance's 8 fractional digits."""
    return format(Decimal(text).quantize(Decimal("0.00000001")), "f")


def _symbol_info(inst: Instrument, delisted: bool = False) -> dict[str, Any]:
    return {
        "symbol": inst.symbol,
        "status": "BREAK" if delisted else "TRADING",
        "baseAsset": inst.base,
        "baseAssetPrecision": 8,
        "quoteAsset": inst.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": _ORDER_TYPES,
        "icebergAllowed": True,
        "ocoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _eight(inst.tick_text),
                "maxPrice": "1000000.00000000",
                "tickSize": _eight(inst.tick_text),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": _eight(inst.step_text),
                "maxQty": "9000.00000000" if inst.lot_decimals else "90000000.00000000",
                "stepSize": _eight(inst.step_text),
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }
