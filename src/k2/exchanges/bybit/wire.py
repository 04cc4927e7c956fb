"""Bybit v5 spot's public WebSocket and REST wire format, in both directions.

Client → exchange: the topic of a symbol's trades (``publicTrade.BTCUSDT``), ``subscribe`` and
``unsubscribe`` requests of at most :data:`MAX_ARGS_PER_REQUEST` topics, and the JSON ``ping``.
Exchange → client: ``render_*`` functions that produce frames exactly as Bybit sends them: the
trade push, the subscribe acknowledgement (or refusal), the pong, and the REST answers of
``instruments-info`` and ``recent-trade``.

Sources (the ``bybit-exchange/docs`` repository): ``docs/v5/websocket/wss-authentication.mdx``
("Connect": URLs, "IP Limits", "Public channel - Args limits", the heartbeat and the spot
subscribe/pong examples), ``docs/v5/websocket/public/trade.mdx`` (the trade push; ``S`` is
"Side of taker"), ``docs/v5/market/recent-trade.mdx`` and ``docs/v5/market/instrument.mdx``, and
``docs/v5/rate-limit`` (600 HTTP requests per 5 s per IP; 500 connections per 5 minutes and at
most 1,000 market-data connections per IP). The refusals are not in the docs; their text comes
from live captures quoted by third-party clients: ``Invalid symbol :[publicTrade.NOPEUSDT]`` for
a symbol Bybit does not list, and ``args size >10`` for a request of more than ten topics (the
whole request is then refused).

A trade is rendered from the same ``fields`` mapping a parsed
:class:`~k2.exchanges.base.RawTrade` carries: the trade object's own keys and values as sent
(``p``/``v`` decimal strings, ``i`` the id as a string, ``T``/``seq`` ints, ``BT``/``RPI``
booleans) plus the frame's ``ts`` and ``type``, so ``parse(render(fields)) == fields``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

from k2.exchanges.base import FieldValue

WS_URL = "wss://stream.bybit.com/v5/public/spot"
REST_URL = "https://api.bybit.com"
WS_PATH = "/v5/public/spot"
INSTRUMENTS_PATH = "/v5/market/instruments-info"
RECENT_TRADES_PATH = "/v5/market/recent-trade"
CATEGORY = "spot"

TOPIC_PREFIX = "publicTrade."
BOOK_TOPIC_PREFIX = "orderbook."
BOOK_DEPTHS = (1, 50, 200, 1000)  # the depths of spot order book topics
MAX_ARGS_PER_REQUEST = 10  # "Spot can input up to 10 args for each subscription request"
MAX_ARGS_CHARS = 21_000  # the args of one public connection, in characters, at most
PING_INTERVAL_S = 20.0  # "we recommend that you send the ping heartbeat packet every 20 seconds"
IDLE_CUT_S = 600.0  # "no ping-pong and no stream data ... cut off after 10 minutes"
CONNECTIONS_PER_5_MIN = 500  # per WebSocket domain
MAX_CONNECTIONS = 1000  # market-data connections per IP, counted per market (spot)
RECENT_TRADES_SPOT = 60  # recent-trade ``limit`` for spot: [1, 60], default 60
HTTP_REQUESTS_PER_5_S = 600  # per IP, every REST endpoint together
TRADING = "Trading"  # instruments-info ``status`` of a symbol that trades

# Fields of one trade object, in the order Bybit's spot push writes them (live captures).
TRADE_FIELDS = ("i", "T", "p", "v", "S", "seq", "s", "BT", "RPI")
FRAME_FIELDS = ("ts", "type")  # the frame's own fields kept with each of its trades
ARGS_TOO_MANY = "args size >10"


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def topic(symbol: str) -> str:
    """The trade topic of one spot symbol: ``publicTrade.BTCUSDT``."""
    return TOPIC_PREFIX + symbol


def symbol_of(topic_name: str) -> str | None:
    """The symbol a trade topic names, or None for another topic."""
    if topic_name.startswith(TOPIC_PREFIX) and len(topic_name) > len(TOPIC_PREFIX):
        return topic_name[len(TOPIC_PREFIX) :]
    return None


def book_topic(depth: int, symbol: str) -> str:
    """The order book topic of one spot symbol at a depth: ``orderbook.50.BTCUSDT``."""
    return f"{BOOK_TOPIC_PREFIX}{depth}.{symbol}"


def book_of(topic_name: str) -> tuple[int, str] | None:
    """The depth and symbol an order book topic names, or None for another topic (or a depth
    spot does not offer)."""
    if not topic_name.startswith(BOOK_TOPIC_PREFIX) or topic_name.count(".") != 2:
        return None
    _, depth, symbol = topic_name.split(".")
    if not (depth.isascii() and depth.isdigit()) or int(depth) not in BOOK_DEPTHS or not symbol:
        return None
    return int(depth), symbol


def render_orderbook(
    topic_name: str,
    snapshot: bool,
    bids: Sequence[tuple[str, str]],
    asks: Sequence[tuple[str, str]],
    update_id: int,
    cross_seq: int,
    ts_ms: int,
    cts_ms: int,
) -> str:
    """An order book message: ``{"topic","type":"snapshot"|"delta","ts","data":{"s","b","a",
    "u","seq"},"cts"}``, levels ``[price, size]`` (size "0" deletes)."""
    symbol = topic_name.rsplit(".", 1)[1]
    data = {
        "s": symbol,
        "b": [list(level) for level in bids],
        "a": [list(level) for level in asks],
        "u": update_id,
        "seq": cross_seq,
    }
    kind = "snapshot" if snapshot else "delta"
    return _dumps({"topic": topic_name, "type": kind, "ts": ts_ms, "data": data, "cts": cts_ms})


def subscribe(topics: Sequence[str], req_id: str) -> str:
    """``{"req_id":...,"op":"subscribe","args":[...]}``: at most 10 topics on spot."""
    return _dumps({"req_id": req_id, "op": "subscribe", "args": list(topics)})


def unsubscribe(topics: Sequence[str], req_id: str) -> str:
    """``{"req_id":...,"op":"unsubscribe","args":[...]}``."""
    return _dumps({"req_id": req_id, "op": "unsubscribe", "args": list(topics)})


def ping(req_id: str) -> str:
    """The application heartbeat the client sends: ``{"req_id":"100001","op":"ping"}``."""
    return _dumps({"req_id": req_id, "op": "ping"})


def connection_budget(symbol_chars: int) -> int:
    """Trade topics one connection carries within :data:`MAX_ARGS_CHARS`, for symbols of at
    most ``symbol_chars`` characters (each arg counted with its quotes and comma)."""
    return MAX_ARGS_CHARS // (len(TOPIC_PREFIX) + symbol_chars + 3)


# --- exchange → client ----------------------------------------------------------------------


def trade_fields(
    symbol: str,
    trade_id: str,
    price: str,
    size: str,
    trade_time_ms: int,
    side: str,
    seq: int,
    frame_ts: int | None = None,
) -> dict[str, FieldValue]:
    """The ``fields`` of one spot trade (``side`` is ``Buy`` or ``Sell``, the taker's)."""
    return {
        "i": trade_id,
        "T": trade_time_ms,
        "p": price,
        "v": size,
        "S": side,
        "seq": seq,
        "s": symbol,
        "BT": False,
        "RPI": False,
        "ts": trade_time_ms if frame_ts is None else frame_ts,
        "type": "snapshot",
    }


_PLAIN = re.compile(r"[A-Za-z0-9._-]*")  # text json.dumps writes as it is, quoted
_JSON_BOOL = {True: "true", False: "false"}


def _trade_object(fields: Mapping[str, FieldValue]) -> str:
    """One trade object's text in Bybit's key order (other keys after, as given)."""
    names = [name for name in TRADE_FIELDS if name in fields]
    names += [name for name in fields if name not in TRADE_FIELDS and name not in FRAME_FIELDS]
    plain = all(_plain_value(fields[name]) for name in names)
    if not plain:
        return _dumps({name: fields[name] for name in names})
    return "{" + ",".join(f'"{name}":{_plain_text(fields[name])}' for name in names) + "}"


def _plain_value(value: FieldValue) -> bool:
    return not isinstance(value, str) or bool(_PLAIN.fullmatch(value))


def _plain_text(value: FieldValue) -> str:
    if isinstance(value, bool):
        return _JSON_BOOL[value]
    if isinstance(value, str):
        return f'"{value}"'
    return "null" if value is None else str(value)


def render_trades(trades: Sequence[Mapping[str, FieldValue]]) -> str:
    """One ``publicTrade`` push of one symbol's trades (at most 1024 a frame on Bybit):
    ``{"topic":...,"ts":...,"type":"snapshot","data":[...]}``, ``ts``/``type`` from the last
    trade's fields."""
    last = trades[-1]
    symbol = str(last["s"])
    head = {"topic": topic(symbol), "ts": last.get("ts"), "type": last.get("type", "snapshot")}
    objects = ",".join(_trade_object(fields) for fields in trades)
    return _dumps(head)[:-1] + ',"data":[' + objects + "]}"


def trades_template(symbol: str) -> str | None:
    """The push of one symbol's trades as a ``%`` template of ``(ts, objects)`` (the objects
    joined by commas, each from :func:`trade_object_template`): the text :func:`render_trades`
    writes for the simulator's trades, one formatting operation each. None when the symbol
    needs JSON escaping."""
    if not _PLAIN.fullmatch(symbol):
        return None
    return '{"topic":"' + topic(symbol) + '","ts":%d,"type":"snapshot","data":[%s]}'


def trade_object_template(symbol: str) -> str | None:
    """One trade object of ``symbol`` as a ``%`` template of ``(i, T, p, v, S, seq)``."""
    if not _PLAIN.fullmatch(symbol):
        return None
    return (
        '{"i":"%s","T":%d,"p":"%s","v":"%s","S":"%s","seq":%d,"s":"' + symbol + '",'
        '"BT":false,"RPI":false}'
    )


def render_ack(
    op: str, conn_id: str, req_id: str | None, success: bool = True, ret_msg: str | None = None
) -> str:
    """The answer to a ``subscribe``/``unsubscribe`` (spot: ``ret_msg`` is the op on success)."""
    answer: dict[str, object] = {
        "success": success,
        "ret_msg": op if ret_msg is None else ret_msg,
        "conn_id": conn_id,
    }
    if req_id is not None:
        answer["req_id"] = req_id
    answer["op"] = op
    return _dumps(answer)


def invalid_symbols(topics: Sequence[str]) -> str:
    """The ``ret_msg`` of a refused subscription: ``Invalid symbol :[publicTrade.NOPE]``."""
    return "Invalid symbol :[" + ",".join(topics) + "]"


def render_pong(conn_id: str, req_id: str | None) -> str:
    """Spot's answer to ``op: ping``: ``{"success":true,"ret_msg":"pong",...,"op":"ping"}``."""
    answer: dict[str, object] = {"success": True, "ret_msg": "pong", "conn_id": conn_id}
    if req_id is not None:
        answer["req_id"] = req_id
    answer["op"] = "ping"
    return _dumps(answer)


# --- REST -----------------------------------------------------------------------------------


def render_envelope(result: object, time_ms: int) -> str:
    """A REST answer: ``{"retCode":0,"retMsg":"OK","result":...,"retExtInfo":{},"time":...}``."""
    body = {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": time_ms}
    return _dumps(body)


def render_error(code: int, message: str, time_ms: int) -> str:
    """A REST error body: ``{"retCode":10001,"retMsg":"...","result":{},...}``."""
    body = {"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": time_ms}
    return _dumps(body)


def render_instruments(instruments: Iterable[tuple[str, str, str, str, str]], time_ms: int) -> str:
    """``GET /v5/market/instruments-info?category=spot`` for ``(symbol, base, quote, tick,
    step)`` entries, all ``Trading`` (spot does not page: every symbol in one answer)."""
    entries = [
        {
            "symbol": symbol,
            "baseCoin": base,
            "quoteCoin": quote,
            "innovation": "0",
            "status": TRADING,
            "marginTrading": "none",
            "stTag": "0",
            "lotSizeFilter": {"basePrecision": step, "quotePrecision": tick},
            "priceFilter": {"tickSize": tick},
        }
        for symbol, base, quote, tick, step in instruments
    ]
    return render_envelope({"category": CATEGORY, "list": entries}, time_ms)


def recent_trade_row(fields: Mapping[str, FieldValue]) -> dict[str, object]:
    """One row of ``recent-trade`` for a trade's push ``fields`` (``time`` as a string of ms,
    as the REST answer writes it)."""
    return {
        "execId": fields["i"],
        "symbol": fields["s"],
        "price": fields["p"],
        "size": fields["v"],
        "side": fields["S"],
        "time": str(fields["T"]),
        "isBlockTrade": fields.get("BT", False),
    }


def render_recent_trades(rows: Sequence[Mapping[str, object]], time_ms: int) -> str:
    """``GET /v5/market/recent-trade?category=spot``: rows newest first."""
    return render_envelope({"category": CATEGORY, "list": list(rows)}, time_ms)
