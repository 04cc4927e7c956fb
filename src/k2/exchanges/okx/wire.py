"""OKX v5's public WebSocket and REST wire format for spot trades, in both directions.

Sources (the official documentation, okx.com/docs-v5/en, read in a stored copy of its
``#overview-websocket`` and ``#order-book-trading-market-data`` sections, 2026):

- ``trades-all`` ("All trades channel") is served on ``/ws/v5/business``; "every update contain
  only one trade", so per-instrument ``tradeId`` values follow one another without holes. It is
  listed with the market-data channels, which need no login (the overview: "Public channels --
  No authentication is required"); the docs' own example subscribes with the SDK's public client
  (``WsPublicAsync``), and public collectors subscribe to it without logging in.
- ``trades`` on ``/ws/v5/public`` sends one row "per taker order, filled price, source", whose
  ``tradeId`` is the last of ``count`` aggregated trades (``tradeId=123, count=3`` stands for
  123, 122 and 121). K2 subscribes to ``trades-all`` so each row is one trade with its own size;
  a ``trades`` row is read only when it stands for one trade (``count`` absent or ``1``).
- Trade fields are strings as sent: ``instId``, ``tradeId``, ``px``, ``sz``, ``side``, ``ts``
  (milliseconds since the epoch) and ``source`` (``0`` normal, ``1`` Enhanced Liquidity Program);
  ``trades`` adds ``count`` (a string) and ``seqId`` (a JSON integer).
- ``side`` is the taker's: the ``trades`` channel documents it as "Trade side of taker", and so do
  the REST ``/api/v5/market/trades`` and ``history-trades`` rows, which are the trades
  ``trades-all`` pushes (the ``trades`` docs: "compare with data from the trades-all channel").
- Requests: ``{"id":"1","op":"subscribe","args":[{"channel":"trades-all","instId":"BTC-USDT"}]}``;
  each argument is acknowledged with ``{"id":"1","event":"subscribe","arg":{...},"connId":"..."}``;
  errors are ``{"id":..,"event":"error","code":"60012","msg":"Invalid request: ..","connId":..}``;
  an instrument the exchange does not have is code ``60018`` ("Wrong URL or channel:..,instId:..
  doesn't exist", as captured from the live exchange by third-party clients).
- Keep-alive: "The connection will break automatically if the subscription is not established or
  data has not been pushed for more than 30 seconds"; a client sends the text ``ping`` when nothing
  arrived for N < 30 s and gets the text ``pong``.
- Limits: connections 3 requests per second per IP; "subscribe"/"unsubscribe"/"login" 480 per
  connection per hour; the channels of one request at most 64 KB in total.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from k2.exchanges.base import FieldValue

WS_URL = "wss://ws.okx.com:8443/ws/v5/business"
PUBLIC_WS_URL = "wss://ws.okx.com:8443/ws/v5/public"
BUSINESS_PATH = "/ws/v5/business"
PUBLIC_PATH = "/ws/v5/public"
REST_URL = "https://www.okx.com"
INSTRUMENTS_PATH = "/api/v5/public/instruments"
TRADES_PATH = "/api/v5/market/trades"
HISTORY_TRADES_PATH = "/api/v5/market/history-trades"

ALL_TRADES = "trades-all"  # one row per trade (business endpoint)
TRADES = "trades"  # one row per taker order and price (public endpoint)
BOOKS = "books"  # the order book, 400 levels a side (public endpoint)
BOOKS_PATH = "/api/v5/market/books"
BOOKS_REST_MAX = 400  # levels a side a REST book may ask for ("sz")
PING, PONG = "ping", "pong"

CONNECTS_PER_S = 3  # connection (and subscribe) requests per second per IP
REQUESTS_PER_HOUR = 480  # subscribe/unsubscribe/login requests per connection per hour
MAX_REQUEST_BYTES = 64 * 1024  # the channels of one request, in total
IDLE_CUT_S = 30.0  # no subscription, or no data pushed, for this long: the exchange disconnects
HISTORY_PAGE_ROWS = 100  # history-trades: "The maximum and default both are 100"
RECENT_MAX_ROWS = 500  # market/trades: "The maximum is 500"

UNKNOWN_INSTRUMENT = "60018"
INVALID_REQUEST = "60012"
TOO_MANY_REQUESTS = "60014"

ALL_TRADES_FIELDS = ("instId", "tradeId", "px", "sz", "side", "source", "ts")
TRADES_FIELDS = ("instId", "tradeId", "px", "sz", "side", "ts", "count", "source", "seqId")

_PLAIN = re.compile(r"[A-Za-z0-9.\-]*")  # text json.dumps writes as it is, quoted


def okx_decimal(text: str) -> str:
    """Decimal text as OKX prints it: trailing zeros (and a bare point) cut."""
    if "." not in text:
        return text
    return text.rstrip("0").rstrip(".")


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- client → exchange -------------------------------------------------------------------------


def arg(channel: str, inst_id: str) -> dict[str, str]:
    """One subscription argument."""
    return {"channel": channel, "instId": inst_id}


def request(op: str, channel: str, inst_ids: Sequence[str], request_id: str | None) -> str:
    """A ``subscribe``/``unsubscribe`` request for ``inst_ids`` on ``channel``."""
    message: dict[str, object] = {}
    if request_id is not None:
        message["id"] = request_id
    message["op"] = op
    message["args"] = [arg(channel, inst_id) for inst_id in inst_ids]
    return _dumps(message)


def request_size(channel: str, inst_id: str) -> int:
    """Bytes one argument adds to a request (its JSON and a separating comma)."""
    return len(_dumps(arg(channel, inst_id))) + 1


# --- exchange → client -------------------------------------------------------------------------


def trade_fields(
    inst_id: str, trade_id: int | str, px: str, sz: str, side: str, ts_ms: int | str,
    source: str = "0",
) -> dict[str, FieldValue]:  # fmt: skip
    """The fields of one ``trades-all`` row, every value a string as OKX sends it."""
    return {
        "instId": inst_id,
        "tradeId": str(trade_id),
        "px": px,
        "sz": sz,
        "side": side,
        "source": source,
        "ts": str(ts_ms),
    }


def _ordered(fields: Mapping[str, FieldValue], order: Sequence[str]) -> dict[str, FieldValue]:
    payload = {name: fields[name] for name in order if name in fields}
    payload.update({name: value for name, value in fields.items() if name not in payload})
    return payload


def trade_template(channel: str, inst_id: str) -> str | None:
    """A ``trades-all`` push of one instrument as a ``%`` template of ``(tradeId, px, sz, side,
    source, ts)``: one formatting operation per trade, the text :func:`render_trades` writes.
    None when the names need JSON escaping."""
    if not (_PLAIN.fullmatch(channel) and _PLAIN.fullmatch(inst_id)):
        return None
    escaped = inst_id.replace("%", "%%")
    row = (
        f'{{"instId":"{escaped}","tradeId":"%s","px":"%s","sz":"%s","side":"%s",'
        f'"source":"%s","ts":"%s"}}'
    )
    return f'{{"arg":{{"channel":"{channel}","instId":"{escaped}"}},"data":[{row}]}}'


def render_trades(channel: str, inst_id: str, rows: Iterable[Mapping[str, FieldValue]]) -> str:
    """A push of ``channel`` for ``inst_id``: ``{"arg":{...},"data":[rows]}``, keys in OKX's
    order (``trades-all`` sends one row a push, ``trades`` one row per taker order)."""
    order = ALL_TRADES_FIELDS if channel == ALL_TRADES else TRADES_FIELDS
    data = ",".join(_dumps(_ordered(row, order)) for row in rows)
    return '{"arg":' + _dumps(arg(channel, inst_id)) + ',"data":[' + data + "]}"


BookAction = Literal["snapshot", "update"]
# One level as OKX writes it: price, size, a retired field ("0"), the number of orders.
BookRow = tuple[str, str, str, str]


def book_row(
    bids: Sequence[BookRow], asks: Sequence[BookRow], ts_ms: int, **ids: int
) -> dict[str, object]:
    """One ``books`` data row: ``asks``, ``bids``, ``ts`` and whatever of ``checksum``,
    ``prevSeqId``, ``seqId`` the caller gives, in OKX's key order."""
    row: dict[str, object] = {"asks": [list(r) for r in asks], "bids": [list(r) for r in bids]}
    row["ts"] = str(ts_ms)
    for name in ("checksum", "prevSeqId", "seqId"):
        if name in ids:
            row[name] = ids[name]
    return row


def render_books(
    action: BookAction,
    inst_id: str,
    bids: Sequence[BookRow],
    asks: Sequence[BookRow],
    ts_ms: int,
    checksum: int,
    seq_id: int,
    prev_seq_id: int,
) -> str:
    """A ``books`` push: ``{"arg":..., "action":..., "data":[{asks, bids, ts, checksum,
    prevSeqId, seqId}]}`` (a snapshot's ``prevSeqId`` is -1)."""
    row = book_row(bids, asks, ts_ms, checksum=checksum, prevSeqId=prev_seq_id, seqId=seq_id)
    return _dumps({"arg": arg(BOOKS, inst_id), "action": action, "data": [row]})


def render_event(
    event: str, channel: str, inst_id: str, conn_id: str, request_id: str | None = None
) -> str:
    """The event acknowledging one argument: ``{"id":..,"event":"subscribe","arg":..,
    "connId":..}``."""
    message: dict[str, object] = {}
    if request_id is not None:
        message["id"] = request_id
    message.update(event=event, arg=arg(channel, inst_id), connId=conn_id)
    return _dumps(message)


def render_error(code: str, msg: str, conn_id: str, request_id: str | None = None) -> str:
    """An error event: ``{"id":..,"event":"error","code":"60018","msg":"..","connId":".."}``."""
    message: dict[str, object] = {}
    if request_id is not None:
        message["id"] = request_id
    message.update(event="error", code=code, msg=msg, connId=conn_id)
    return _dumps(message)


def unknown_instrument_message(channel: str, inst_id: str) -> str:
    """The ``60018`` message for an instrument (or channel) the endpoint does not have."""
    return (
        f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist. Please use the correct "
        "URL, channel and parameters referring to API document."
    )


# --- REST -----------------------------------------------------------------------------------


def rest_body(data: Sequence[object], code: str = "0", msg: str = "") -> str:
    """OKX's REST envelope: ``{"code":"0","msg":"","data":[...]}``."""
    return _dumps({"code": code, "msg": msg, "data": list(data)})


def rest_trade_row(fields: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    """A ``market/trades`` or ``history-trades`` row of a trade's fields, in OKX's key order."""
    order = ("instId", "side", "sz", "source", "px", "tradeId", "ts")
    return {name: fields[name] for name in order if name in fields}


def instrument_row(
    inst_id: str, base: str, quote: str, tick: str, lot: str, state: str = "live"
) -> dict[str, str]:
    """One ``/api/v5/public/instruments?instType=SPOT`` entry (the fields clients read)."""
    return {
        "instType": "SPOT", "instId": inst_id, "uly": "", "instFamily": "", "baseCcy": base,
        "quoteCcy": quote, "settleCcy": "", "ctVal": "", "ctMult": "", "ctValCcy": "",
        "optType": "", "stk": "", "listTime": "1548133413000", "expTime": "", "lever": "",
        "tickSz": tick, "lotSz": lot, "minSz": lot, "ctType": "", "alias": "", "state": state,
        "maxLmtSz": "9999999999", "maxMktSz": "1000000", "category": "1",
    }  # fmt: skip
