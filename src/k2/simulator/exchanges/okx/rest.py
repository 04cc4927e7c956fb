"""OKX v5 public REST endpoints, served from the simulator's shared trade history.

``GET /api/v5/public/instruments?instType=SPOT`` (every listed instrument, ``state`` ``live``,
``suspend`` once delisted; other instrument types list none here), ``/api/v5/market/trades``
(the newest ``limit`` trades, at most 500, newest first), ``/api/v5/market/history-trades``
(``type=1`` pages by trade id: ``after`` gives older trades, ``before`` newer ones; ``type=2``
by time; at most 100 rows, newest first), ``/api/v5/market/books`` (``sz`` levels a side of the
order book with its ``seqId``) and ``/api/v5/public/time``, in OKX's envelope
``{"code":"0","msg":"","data":[...]}``. Each endpoint allows ``rest_limit`` requests per 2 s and
answers HTTP 429 with code 50011 beyond it, as OKX does. Trades the exchange "lost" on its streams
are here: REST is how a client backfills them.
"""

from __future__ import annotations

import bisect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from k2.exchanges.okx import wire
from k2.exchanges.okx.wire import okx_decimal
from k2.simulator.exchange import ExchangeMarket, now_us
from k2.simulator.exchanges.okx.books import rest_book
from k2.simulator.faults import FaultBook
from k2.simulator.ledger import Ledger
from k2.simulator.limits import WindowLimit
from k2.simulator.market import SimTrade, SymbolHistory

_Handler = Callable[[Mapping[str, str]], list[Any]]
_Route = Callable[[web.Request], Awaitable[web.Response]]
_WINDOW_S = 2.0


class _RefusedError(Exception):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def _response(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="application/json")


class OkxRest:
    """The REST half of the simulated OKX exchange."""

    def __init__(
        self,
        market: ExchangeMarket,
        limit: int,
        faults: FaultBook | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.market = market
        self.limit = limit
        self.faults = FaultBook() if faults is None else faults
        self.ledger = Ledger(None) if ledger is None else ledger

    def routes(self) -> list[web.RouteDef]:
        endpoints: dict[str, _Handler] = {
            wire.INSTRUMENTS_PATH: self._instruments,
            wire.TRADES_PATH: self._trades,
            wire.HISTORY_TRADES_PATH: self._history_trades,
            "/api/v5/public/time": self._time,
            wire.BOOKS_PATH: self._books,
        }
        return [web.get(path, self._endpoint(handler)) for path, handler in endpoints.items()]

    def _endpoint(self, handler: _Handler) -> _Route:
        window = WindowLimit(self.limit, _WINDOW_S)

        async def handle(request: web.Request) -> web.Response:
            if not window.take(1):
                return _response(wire.rest_body([], "50011", "Too Many Requests"), 429)
            try:
                data = handler(request.query)
            except _RefusedError as refusal:
                return _response(wire.rest_body([], refusal.code, refusal.msg), 400)
            return _response(wire.rest_body(data))

        return handle

    # --- parameters ---------------------------------------------------------------------------

    def _history(self, query: Mapping[str, str]) -> SymbolHistory:
        inst_id = query.get("instId")
        if not inst_id:
            raise _RefusedError("50014", "Parameter instId can not be empty.")
        history = self.market.histories.get(inst_id)
        if history is None:
            raise _RefusedError("51001", "Instrument ID does not exist.")
        return history

    @staticmethod
    def _int(query: Mapping[str, str], name: str, default: int | None) -> int | None:
        raw = query.get(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit():
            raise _RefusedError("51000", f"Parameter {name} error")
        return int(raw)

    def _limit(self, query: Mapping[str, str], most: int) -> int:
        return max(1, min(self._int(query, "limit", 100) or 100, most))

    # --- endpoints ----------------------------------------------------------------------------

    def _instruments(self, query: Mapping[str, str]) -> list[Any]:
        kind = query.get("instType")
        if not kind:
            raise _RefusedError("50014", "Parameter instType can not be empty.")
        if kind != "SPOT":
            return []
        rows = []
        for inst in self.market.instruments.values():
            if query.get("instId") not in (None, inst.symbol):
                continue
            state = "suspend" if inst.symbol in self.market.delisted else "live"
            rows.append(
                wire.instrument_row(
                    inst.symbol, inst.base, inst.quote, inst.tick_text, inst.step_text, state
                )
            )
        return rows

    def _trades(self, query: Mapping[str, str]) -> list[Any]:
        history = self._history(query)
        trades = history.trades[-self._limit(query, wire.RECENT_MAX_ROWS) :]
        return [_row(history, trade) for trade in reversed(trades)]

    def _history_trades(self, query: Mapping[str, str]) -> list[Any]:
        history = self._history(query)
        limit = self._limit(query, wire.HISTORY_PAGE_ROWS)
        by_time = query.get("type", "1") == "2"
        after, before = self._int(query, "after", None), self._int(query, "before", None)
        if by_time and before is not None:
            raise _RefusedError("51000", "Parameter before error")
        trades = history.trades
        key = (lambda t: t.time_us // 1000) if by_time else (lambda t: t.trade_id)
        end = len(trades) if after is None else bisect.bisect_left(trades, after, key=key)
        start = 0 if before is None else bisect.bisect_right(trades, before, key=key)
        if after is None and before is not None:
            chosen = trades[start : start + limit]  # the trades just newer than ``before``
        else:
            chosen = trades[max(start, end - limit) : end]
        return [_row(history, trade) for trade in reversed(chosen)]

    def _books(self, query: Mapping[str, str]) -> list[Any]:
        history = self._history(query)
        size = max(1, min(self._int(query, "sz", 1) or 1, wire.BOOKS_REST_MAX))
        book = self.market.book(history.instrument.symbol)
        return [rest_book(book, size, self.faults, self.ledger, self.market.exchange)]

    def _time(self, query: Mapping[str, str]) -> list[Any]:
        return [{"ts": str(now_us() // 1000)}]


def _row(history: SymbolHistory, trade: SimTrade) -> dict[str, Any]:
    fields = wire.trade_fields(
        history.instrument.symbol, trade.trade_id, okx_decimal(trade.price),
        okx_decimal(trade.qty), trade.side, trade.time_us // 1000,
    )  # fmt: skip
    return wire.rest_trade_row(fields)
