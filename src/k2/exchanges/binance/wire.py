"""Binance spot's public WebSocket wire format, in both directions.

Client → exchange: stream names, the combined-stream URL (``/stream?streams=a/b&timeUnit=...``) and
the JSON control requests (``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``).
Exchange → client: ``render_*`` functions that produce frames exactly as Binance sends them: the
``@trade`` and ``@aggTrade`` payloads (optionally wrapped ``{"stream":...,"data":...}``), the
request results and errors, and ``serverShutdown``. Binance keep-alive is protocol-level (ping
frames every 20 s, answered by the WebSocket library), so there is no JSON heartbeat or pong.

A trade is rendered from the same ``fields`` mapping a parsed
:class:`~k2.exchanges.base.RawTrade` carries: the payload's single-letter keys with their values
as sent (``p``/``q`` decimal strings, ids and times ints, ``m``/``M`` booleans), so
``parse(render(fields)) == fields``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal
from urllib.parse import urlencode

from k2.exchanges.base import FieldValue

WS_URL = "wss://stream.binance.com:9443"
MARKET_DATA_WS_URL = "wss://data-stream.binance.vision"
REST_URL = "https://api.binance.com"
EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
DEPTH_PATH = "/api/v3/depth"
DEPTH_EVENT = "depthUpdate"
DEPTH_LIMITS = (1, 5000)  # levels a side a depth snapshot may ask for
DEPTH_DEFAULT_LIMIT = 100

MAX_STREAMS_PER_CONNECTION = 1024
CONTROL_MESSAGES_PER_SECOND = 5  # incoming pings, pongs and JSON requests, per connection

StreamKind = Literal["trade", "aggTrade"]
TimeUnit = Literal["MILLISECOND", "MICROSECOND"]

TRADE_FIELDS = ("e", "E", "s", "t", "p", "q", "T", "m", "M")
AGG_TRADE_FIELDS = ("e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M")


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def stream_name(symbol: str, kind: StreamKind) -> str:
    """The stream of one symbol: ``btcusdt@trade`` (stream names are lower case)."""
    return f"{symbol.lower()}@{kind}"


def combined_stream_url(base_url: str, streams: Sequence[str], time_unit: TimeUnit | None) -> str:
    """``<base>/stream?streams=a/b[&timeUnit=MICROSECOND]``; the slashes stay unescaped."""
    url = base_url.rstrip("/") + "/stream?streams=" + "/".join(streams)
    if time_unit is not None:
        url += "&" + urlencode({"timeUnit": time_unit})
    return url


def subscribe(streams: Sequence[str], request_id: int) -> str:
    """``SUBSCRIBE`` request; answered ``{"result":null,"id":request_id}`` (even for unknowns)."""
    return _dumps({"method": "SUBSCRIBE", "params": list(streams), "id": request_id})


def unsubscribe(streams: Sequence[str], request_id: int) -> str:
    """``UNSUBSCRIBE`` request; answered ``{"result":null,"id":request_id}``."""
    return _dumps({"method": "UNSUBSCRIBE", "params": list(streams), "id": request_id})


def list_subscriptions(request_id: int) -> str:
    """``LIST_SUBSCRIPTIONS`` request; answered ``{"result":[stream,...],"id":request_id}``."""
    return _dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id})


# --- exchange → client -------------------------------------------------------------------------


def trade_fields(
    symbol: str,
    trade_id: int,
    price: str,
    quantity: str,
    trade_time: int,
    buyer_is_maker: bool,
    event_time: int | None = None,
) -> dict[str, FieldValue]:
    """The ``fields`` of one ``@trade`` payload; times in the connection's unit (ms or µs)."""
    return {
        "e": "trade",
        "E": trade_time if event_time is None else event_time,
        "s": symbol.upper(),
        "t": trade_id,
        "p": price,
        "q": quantity,
        "T": trade_time,
        "m": buyer_is_maker,
        "M": True,
    }


def agg_trade_fields(
    symbol: str,
    agg_id: int,
    price: str,
    quantity: str,
    first_trade_id: int,
    last_trade_id: int,
    trade_time: int,
    buyer_is_maker: bool,
    event_time: int | None = None,
) -> dict[str, FieldValue]:
    """The ``fields`` of one ``@aggTrade`` payload; times in the connection's unit (ms or µs)."""
    return {
        "e": "aggTrade",
        "E": trade_time if event_time is None else event_time,
        "s": symbol.upper(),
        "a": agg_id,
        "p": price,
        "q": quantity,
        "f": first_trade_id,
        "l": last_trade_id,
        "T": trade_time,
        "m": buyer_is_maker,
        "M": True,
    }


def _ordered(fields: Mapping[str, FieldValue], order: Sequence[str]) -> dict[str, FieldValue]:
    payload = {name: fields[name] for name in order if name in fields}
    payload.update({name: value for name, value in fields.items() if name not in payload})
    return payload


def _wrap(payload: str, stream: str | None) -> str:
    if stream is None:
        return payload
    return '{"stream":' + json.dumps(stream) + ',"data":' + payload + "}"


_PLAIN_TEXT = re.compile(r"[A-Za-z0-9.@_-]*")  # text json.dumps writes as it is, quoted
_JSON_BOOL = {True: "true", False: "false"}


def _plain_trade(fields: Mapping[str, FieldValue], stream: str | None) -> str | None:
    """The common ``@trade`` payload as text directly (what ``json.dumps`` writes for it)."""
    e, event_time, s, t = fields.get("e"), fields.get("E"), fields.get("s"), fields.get("t")
    p, q, trade_time, m, big_m = (fields.get(k) for k in ("p", "q", "T", "m", "M"))
    if not (
        len(fields) == len(TRADE_FIELDS)
        and e == "trade"
        and type(event_time) is int
        and type(t) is int
        and type(trade_time) is int
        and type(m) is bool
        and type(big_m) is bool
        and all(isinstance(v, str) and _PLAIN_TEXT.fullmatch(v) for v in (s, p, q))
        and (stream is None or _PLAIN_TEXT.fullmatch(stream))
    ):
        return None
    return _trade_text(str(s), stream, event_time, t, str(p), str(q), trade_time,
                       _JSON_BOOL[m], _JSON_BOOL[big_m])  # fmt: skip


def _trade_text(
    s: str, stream: str | None, e_time: int | str, t: int | str, p: str, q: str,
    trade_time: int | str, m: str, big_m: str,
) -> str:  # fmt: skip
    payload = (
        f'{{"e":"trade","E":{e_time},"s":"{s}","t":{t},"p":"{p}","q":"{q}",'
        f'"T":{trade_time},"m":{m},"M":{big_m}}}'
    )
    return payload if stream is None else f'{{"stream":"{stream}","data":{payload}}}'


def trade_template(symbol: str, stream: str | None) -> str | None:
    """:func:`render_trade` of one symbol (and stream) as a ``%`` template of ``(E, t, p, q, T,
    m, M)``, ``m``/``M`` as ``true``/``false`` and ``p``/``q`` plain decimal text: one formatting
    operation per trade (the simulator's hot path), the same text. None when the names need
    JSON escaping."""
    if not _PLAIN_TEXT.fullmatch(symbol) or (
        stream is not None and not _PLAIN_TEXT.fullmatch(stream)
    ):
        return None
    return _trade_text(symbol, stream, "%d", "%d", "%s", "%s", "%d", "%s", "%s")


def render_trade(fields: Mapping[str, FieldValue], stream: str | None = None) -> str:
    """A ``@trade`` payload in Binance's key order; wrapped ``{"stream","data"}`` if ``stream``.

    A raw stream (``/ws/<name>``) sends the bare payload; a combined stream
    (``/stream?streams=``) wraps it with the lower-case stream name, e.g. ``btcusdt@trade``.
    """
    plain = _plain_trade(fields, stream)
    if plain is not None:
        return plain
    return _wrap(_dumps(_ordered(fields, TRADE_FIELDS)), stream)


def render_agg_trade(fields: Mapping[str, FieldValue], stream: str | None = None) -> str:
    """An ``@aggTrade`` payload in Binance's key order; wrapped if ``stream`` is given."""
    return _wrap(_dumps(_ordered(fields, AGG_TRADE_FIELDS)), stream)


def render_depth_update(
    symbol: str,
    first_id: int,
    last_id: int,
    event_time: int,
    bids: Sequence[tuple[str, str]],
    asks: Sequence[tuple[str, str]],
    stream: str | None = None,
) -> str:
    """A diff depth event (``<symbol>@depth[@100ms]``): the update ids ``U``..``u`` it spans and
    each changed level's new ``[price, quantity]`` text (0 removes); wrapped if ``stream``."""
    payload = {
        "e": DEPTH_EVENT,
        "E": event_time,
        "s": symbol.upper(),
        "U": first_id,
        "u": last_id,
        "b": [list(level) for level in bids],
        "a": [list(level) for level in asks],
    }
    return _wrap(_dumps(payload), stream)


def render_depth_snapshot(
    last_update_id: int, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]]
) -> str:
    """The body of ``GET /api/v3/depth``: ``{"lastUpdateId", "bids", "asks"}``, best first."""
    return _dumps(
        {
            "lastUpdateId": last_update_id,
            "bids": [list(level) for level in bids],
            "asks": [list(level) for level in asks],
        }
    )


def render_result(request_id: int | str | None, result: Sequence[str] | None = None) -> str:
    """Answer to a JSON request: ``{"result":null,"id":1}`` (or the stream list)."""
    return _dumps({"result": None if result is None else list(result), "id": request_id})


def render_error(code: int, msg: str, request_id: int | str | None) -> str:
    """A request error as sent on the wire: ``{"error":{"code":2,"msg":"..."},"id":1}``."""
    return _dumps({"error": {"code": code, "msg": msg}, "id": request_id})


def render_server_shutdown(event_time: int, combined: bool = True) -> str:
    """``serverShutdown`` (disconnection follows); wrapped as ``!serverShutdown`` if combined."""
    payload = _dumps({"e": "serverShutdown", "E": event_time})
    return _wrap(payload, "!serverShutdown" if combined else None)


# --- REST reference data --------------------------------------------------------------------


def render_exchange_info(symbols: Iterable[tuple[str, str]], server_time_ms: int = 0) -> str:
    """A ``GET /api/v3/exchangeInfo`` response for ``(base, quote)`` pairs, all ``TRADING``.

    Entries carry the fields K2 reads (``symbol``, ``status``, ``baseAsset``, ``quoteAsset``).
    """
    entries = [
        {
            "symbol": (base + quote).upper(),
            "status": "TRADING",
            "baseAsset": base.upper(),
            "quoteAsset": quote.upper(),
            "isSpotTradingAllowed": True,
        }
        for base, quote in symbols
    ]
    return _dumps(
        {
            "timezone": "UTC",
            "serverTime": server_time_ms,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": entries,
        }
    )
