"""Kraken spot public REST endpoints, served from the simulator's shared trade history.

``GET /0/public/Trades?pair=&since=&count=`` answers ``{"error":[],"result":{"<PAIR>":[[price,
volume,time,side,ordertype,misc,trade_id],...],"last":"<ns>"}}``: prices and volumes are the
same exact strings the v1 socket sends, ``time`` a JSON number of seconds, the row's last
element the trade id the v2 socket sends. ``since`` is exclusive, in nanoseconds (or seconds, as
the exchange also accepts), and ``last`` is the nanosecond time of the last row, ready to be the
next ``since``. ``GET /0/public/AssetPairs`` lists the pairs with ``altname``, ``wsname``,
``base``, ``quote``, the decimals and ``status``; ``/0/public/Assets`` lists every asset of
those pairs (``aclass``, ``altname``, ``decimals``, ``status``: clients load assets before
pairs); ``/0/public/Time`` and ``/0/public/SystemStatus`` answer too. Errors use Kraken's
envelope (``{"error":["EQuery:Unknown asset pair"]}``), and so does the rate limit
(``EGeneral:Too many requests``), with HTTP 200 as the exchange does."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from k2.simulator.exchange import ExchangeMarket, now_us
from k2.simulator.exchanges.kraken.instruments import KrakenInstrument, as_kraken
from k2.simulator.exchanges.kraken.ws_v1 import ORDER_LETTER, SIDE_LETTER
from k2.simulator.limits import WindowLimit
from k2.simulator.market import SimTrade

_Handler = Callable[[Any], str]
_Route = Callable[[web.Request], Awaitable[web.Response]]
_UNKNOWN_PAIR = "EQuery:Unknown asset pair"


class _RefusedError(Exception):
    """A request Kraken answers with an error list."""


def _envelope(result: Any) -> str:
    return json.dumps({"error": [], "result": result}, separators=(",", ":"))


def _error(*errors: str) -> str:
    return json.dumps({"error": list(errors)}, separators=(",", ":"))


class KrakenRest:
    """The REST half of the simulated Kraken exchange."""

    def __init__(self, market: ExchangeMarket, call_limit: int) -> None:
        self.market = market
        self.calls = WindowLimit(call_limit, 10.0)

    def routes(self) -> list[web.RouteDef]:
        endpoints: dict[str, _Handler] = {
            "Trades": self._trades,
            "AssetPairs": self._asset_pairs,
            "Assets": self._assets,
            "Time": self._time,
            "SystemStatus": self._system_status,
        }
        return [
            web.get(f"/0/public/{name}", self._endpoint(handler))
            for name, handler in endpoints.items()
        ]

    def _endpoint(self, handler: _Handler) -> _Route:
        async def handle(request: web.Request) -> web.Response:
            if not self.calls.take(1):
                body = _error("EGeneral:Too many requests")
            else:
                try:
                    body = handler(request.query)
                except _RefusedError as refusal:
                    body = _error(str(refusal))
            return web.Response(text=body, content_type="application/json")

        return handle

    def _pairs(self) -> list[KrakenInstrument]:
        return [as_kraken(inst) for inst in self.market.instruments.values()]

    def _instrument(self, name: str) -> KrakenInstrument:
        for inst in self._pairs():
            if name in (inst.altname, inst.rest_key, inst.symbol):
                return inst
        raise _RefusedError(_UNKNOWN_PAIR)

    def _trades(self, query: Any) -> str:
        pair = query.get("pair")
        if not pair:
            raise _RefusedError("EGeneral:Invalid arguments")
        inst = self._instrument(pair)
        since_ns = _since_ns(query.get("since"))
        count = _count(query.get("count"))
        history = self.market.histories[inst.symbol]
        since_us = None if since_ns is None else since_ns // 1_000
        trades = history.trades_after_time(since_us, count)
        last = str(trades[-1].time_us * 1_000) if trades else str(since_ns or 0)
        rows = ",".join(_trade_row(trade) for trade in trades)
        key = json.dumps(inst.rest_key)
        return '{"error":[],"result":{' + key + ":[" + rows + '],"last":"' + last + '"}}'

    def _asset_pairs(self, query: Any) -> str:
        names = [name for name in query.get("pair", "").split(",") if name]
        instruments = (
            [self._instrument(name) for name in names]
            if names
            else [i for i in self._pairs() if i.symbol not in self.market.delisted]
        )
        return _envelope({inst.rest_key: _pair_info(inst) for inst in instruments})

    def _assets(self, query: Any) -> str:
        """Every asset of the listed pairs (or those named in ``asset``), by REST asset id."""
        found: dict[str, tuple[str, int]] = {}
        for inst in self._pairs():
            found[inst.rest_base] = (inst.base, inst.lot_decimals)
            found.setdefault(inst.rest_quote, (inst.quote, inst.price_decimals))
        names = [name for name in query.get("asset", "").split(",") if name]
        if names:
            by_alt = {alt: key for key, (alt, _) in found.items()}
            keys = [by_alt.get(name, name) for name in names]
            if any(key not in found for key in keys):
                raise _RefusedError("EQuery:Unknown asset")
            found = {key: found[key] for key in keys}
        return _envelope({key: _asset_info(alt, digits) for key, (alt, digits) in found.items()})

    def _time(self, query: Any) -> str:
        now = now_us() // 1_000_000
        rfc1123 = time.strftime("%a, %d %b %y %H:%M:%S +0000", time.gmtime(now))
        return _envelope({"unixtime": now, "rfc1123": rfc1123})

    def _system_status(self, query: Any) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_us() // 1_000_000))
        return _envelope({"status": "online", "timestamp": stamp})


def _since_ns(raw: str | None) -> int | None:
    """``since`` in ns; values of up to 10 integer digits (or with a fraction) are seconds."""
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise _RefusedError("EGeneral:Invalid arguments:since") from exc
    if "." in raw or len(raw) <= 10:
        return int(value * 1_000_000_000)
    return int(value)


def _count(raw: str | None) -> int:
    if raw is None or raw == "":
        return 1000
    if not raw.isdigit():
        raise _RefusedError("EGeneral:Invalid arguments:count")
    return max(1, min(int(raw), 1000))


def _trade_row(trade: SimTrade) -> str:
    seconds, micros = divmod(trade.time_us, 1_000_000)
    return (
        f'["{trade.price}","{trade.qty}",{seconds}.{micros:06d},'
        f'"{SIDE_LETTER[trade.side]}","{ORDER_LETTER[trade.ord_type]}","",{trade.trade_id}]'
    )


def _strip(text: str) -> str:
    return format(Decimal(text).normalize(), "f")


def _asset_info(altname: str, decimals: int) -> dict[str, Any]:
    return {
        "aclass": "currency",
        "altname": altname,
        "decimals": max(decimals, 8),
        "display_decimals": min(decimals, 5),
        "collateral_value": 1.0,
        "status": "enabled",
    }


def _pair_info(inst: KrakenInstrument) -> dict[str, Any]:
    ordermin = _strip(f"{Decimal(inst.min_lots).scaleb(-inst.lot_decimals)}")
    return {
        "altname": inst.altname,
        "wsname": inst.symbol,
        "aclass_base": "currency",
        "base": inst.rest_base,
        "aclass_quote": "currency",
        "quote": inst.rest_quote,
        "lot": "unit",
        "cost_decimals": 5,
        "pair_decimals": inst.price_decimals,
        "lot_decimals": inst.lot_decimals,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": [[0, 0.4], [10000, 0.35], [50000, 0.24]],
        "fees_maker": [[0, 0.25], [10000, 0.2], [50000, 0.14]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": ordermin,
        "costmin": "0.5",
        "tick_size": inst.tick_text,
        "status": "online",
    }
