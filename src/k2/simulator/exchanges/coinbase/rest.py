"""Coinbase's public REST, served from the simulator's shared trade history.

Two of Coinbase's hosts share one base here (``/coinbase``): the Advanced Trade API
(``/api/v3/brokerage/market/products[/{id}[/ticker]]``, ``/api/v3/brokerage/time``), the
Coinbase App's public ``/v2/currencies``, ``/v2/currencies/crypto`` and ``/v2/exchange-rates``
(which ccxt reads before the markets), and the Exchange API's trade history
``/products/{id}/trades`` with its cursors: ``after`` (older than that id) and ``before`` (newer),
``limit`` up to 1,000, the newest first, ``CB-BEFORE``/``CB-AFTER`` headers and ``side`` the
maker's. Requests beyond the configured rate get HTTP 429. Trades the exchange "lost" on its
socket are here: the history is how a client fills them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from k2.exchanges.coinbase import wire
from k2.simulator.exchange import ExchangeMarket, now_us
from k2.simulator.exchanges.coinbase.instruments import ALIAS_QUOTE, ALIASED_QUOTE
from k2.simulator.instruments import Instrument
from k2.simulator.limits import WindowLimit
from k2.simulator.market import SimTrade, SymbolHistory

_Handler = Callable[[web.Request], Any]
_Route = Callable[[web.Request], Awaitable[web.Response]]
_FIAT = {"USD": "US Dollar", "EUR": "Euro", "GBP": "British Pound"}


class _NotFoundError(Exception):
    pass


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    body = json.dumps(data, separators=(",", ":"))
    return web.Response(text=body, status=status, content_type="application/json", headers=headers)


def alias_of(product_id: str) -> str | None:
    """``BTC-USDC`` → ``BTC-USD``: the product whose market data a ``-USDC`` one shares."""
    base, _, quote = product_id.partition("-")
    return f"{base}-{ALIASED_QUOTE}" if quote == ALIAS_QUOTE else None


def maker_side(trade: SimTrade) -> str:
    """The side every Coinbase source sends: the maker's, the other of the taker's (lower case
    in the Exchange API's history, upper case on the socket and in Advanced Trade's REST)."""
    return "sell" if trade.side == "buy" else "buy"


class CoinbaseRest:
    """The REST half of the simulated Coinbase."""

    def __init__(self, market: ExchangeMarket, prefix: str, rest_limit: int) -> None:
        self.market = market
        self.prefix = prefix
        self.limit = WindowLimit(rest_limit, 1.0)

    def routes(self) -> list[web.RouteDef]:
        endpoints: dict[str, _Handler] = {
            wire.PRODUCTS_PATH: self._products,
            wire.PRODUCTS_PATH + "/{product_id}": self._product,
            wire.PRODUCTS_PATH + "/{product_id}/ticker": self._ticker,
            "/api/v3/brokerage/time": self._time,
            "/v2/currencies": self._fiat,
            "/v2/currencies/crypto": self._crypto,
            "/v2/exchange-rates": self._rates,
            "/products/{product_id}/trades": self._history,
        }
        return [
            web.get(self.prefix + path, self._endpoint(handler))
            for path, handler in endpoints.items()
        ]

    def _endpoint(self, handler: _Handler) -> _Route:
        async def handle(request: web.Request) -> web.Response:
            if not self.limit.take(1):
                return json_response({"message": "Public rate limit exceeded"}, 429)
            try:
                found = handler(request)
            except _NotFoundError:
                return json_response({"message": "NotFound"}, 404)
            except ValueError as exc:
                return json_response({"message": str(exc)}, 400)
            return found if isinstance(found, web.Response) else json_response(found)

        return handle

    # --- reference data -----------------------------------------------------------------------

    def entries(self) -> list[dict[str, object]]:
        """Every listed product, each ``-USD`` one followed by its ``-USDC`` alias."""
        found: list[dict[str, object]] = []
        for inst in self.market.instruments.values():
            status = "delisted" if inst.symbol in self.market.delisted else "online"
            twin = f"{inst.base}-{ALIAS_QUOTE}" if inst.quote == ALIASED_QUOTE else None
            sizes = _increments(inst)
            entry = wire.product_entry(
                inst.symbol, inst.base, inst.quote, status, alias_to=(twin,) if twin else ()
            )
            found.append({**entry, **sizes})
            if twin is not None:
                alias = wire.product_entry(twin, inst.base, ALIAS_QUOTE, status, alias=inst.symbol)
                found.append({**alias, **sizes})
        return found

    def _products(self, request: web.Request) -> dict[str, Any]:
        kind = request.query.get("product_type", "SPOT").upper()
        entries = self.entries() if kind == "SPOT" else []
        wanted = request.query.getall("product_ids", [])
        if wanted:
            entries = [e for e in entries if e["product_id"] in wanted]
        return {"products": entries, "num_products": len(entries)}

    def _product(self, request: web.Request) -> dict[str, Any]:
        product_id = request.match_info["product_id"]
        for entry in self.entries():
            if entry["product_id"] == product_id:
                return entry
        raise _NotFoundError

    def _time(self, request: web.Request) -> dict[str, Any]:
        now = now_us()
        return {
            "iso": wire.format_time(now),
            "epochSeconds": str(now // 1_000_000),
            "epochMillis": str(now // 1_000),
        }

    def _assets(self) -> tuple[list[str], list[str]]:
        quotes = {inst.quote for inst in self.market.instruments.values()} | {ALIAS_QUOTE}
        bases = {inst.base for inst in self.market.instruments.values()}
        fiat = sorted(code for code in quotes | bases if code in _FIAT)
        return fiat, sorted((quotes | bases) - set(fiat))

    def _fiat(self, request: web.Request) -> dict[str, Any]:
        fiat, _ = self._assets()
        return {"data": [{"id": code, "name": _FIAT[code], "min_size": "0.01"} for code in fiat]}

    def _crypto(self, request: web.Request) -> dict[str, Any]:
        _, crypto = self._assets()
        data = [
            {"code": code, "name": code, "exponent": 8, "type": "crypto", "sort_index": index}
            for index, code in enumerate(crypto)
        ]
        return {"data": data}

    def _rates(self, request: web.Request) -> dict[str, Any]:
        fiat, crypto = self._assets()
        return {"data": {"currency": "USD", "rates": {code: "1" for code in fiat + crypto}}}

    # --- trades -------------------------------------------------------------------------------

    def _history_of(self, product_id: str) -> SymbolHistory:
        history = self.market.histories.get(alias_of(product_id) or product_id)
        if history is None:
            raise _NotFoundError
        return history

    def _ticker(self, request: web.Request) -> dict[str, Any]:
        """Advanced Trade's recent trades of a product (newest first), by count."""
        product_id = request.match_info["product_id"]
        history = self._history_of(product_id)
        limit = _int(request.query.get("limit"), 100, "limit")
        trades = history.trades_from_id(None, min(limit, 1000))
        rows = [
            {
                "trade_id": str(t.trade_id),
                "product_id": product_id,
                "price": t.price,
                "size": t.qty,
                "time": wire.format_time(t.time_us),
                "side": maker_side(t).upper(),
                "exchange": "coinbase",
            }
            for t in reversed(trades)
        ]
        return {"trades": rows, "best_bid": "", "best_ask": ""}

    def _history(self, request: web.Request) -> web.Response:
        """The Exchange API's trades: newest first, paged by trade id."""
        history = self._history_of(request.match_info["product_id"])
        limit = min(max(_int(request.query.get("limit"), 1000, "limit"), 1), 1000)
        after = request.query.get("after")
        before = request.query.get("before")
        if after is not None:
            below = _int(after, 0, "after")
            start = max(below - limit, 0)
            trades = [t for t in history.trades_from_id(start, limit) if t.trade_id < below]
        elif before is not None:
            trades = history.trades_from_id(_int(before, 0, "before") + 1, limit)
        else:
            trades = history.trades_from_id(None, limit)
        rows = [
            wire.history_row(t.trade_id, t.price, t.qty, maker_side(t), wire.format_time(t.time_us))
            for t in reversed(trades)
        ]
        headers = {}
        if trades:
            headers = {"CB-BEFORE": str(trades[-1].trade_id), "CB-AFTER": str(trades[0].trade_id)}
        return json_response(rows, headers=headers)


def _increments(inst: Instrument) -> dict[str, object]:
    """What ccxt reads of a product's precision."""
    return {"quote_increment": inst.tick_text, "base_increment": inst.step_text}


def _int(text: str | None, default: int, name: str) -> int:
    if text is None or text == "":
        return default
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"invalid {name}")
    return int(text)
