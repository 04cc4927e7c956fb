"""Kraken's public WebSocket wire format, v1 and v2, in both directions.

Client → exchange: the control requests K2 sends (subscribe, unsubscribe, ping).
Exchange → client: ``render_*`` functions that produce frames exactly as Kraken sends them. The
simulator speaks Kraken through these, and the property tests round-trip trades through them, so
the shapes follow the captured frames in ``docs/exchange-protocols.md``: compact JSON, keys in
Kraken's order (alphabetical for events and acks, documentation order for v2 trades).

A trade is rendered from the same ``fields`` mapping a parsed :class:`~k2.exchanges.base.RawTrade`
carries, so ``parse(render(fields)) == fields``:

- v1: ``price``, ``volume``, ``time``, ``side``, ``order_type``, ``misc`` (all strings, e.g.
  ``time="1534614057.321597"``, ``side="b"``, ``order_type="l"``);
- v2: ``symbol``, ``side``, ``price``, ``qty``, ``ord_type``, ``trade_id``, ``timestamp`` where
  ``price``/``qty`` are decimal text written as bare JSON numbers and ``trade_id`` is an int.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from typing import Literal

from k2.domain import datetime_from_micros
from k2.exchanges.base import FieldValue

V1_URL = "wss://ws.kraken.com"
V2_URL = "wss://ws.kraken.com/v2"
REST_URL = "https://api.kraken.com"
ASSET_PAIRS_PATH = "/0/public/AssetPairs"

V1_BOOK_PREFIX = "book-"  # v1 book channel names carry the depth: "book-10"
V1_TRADE_FIELDS = ("price", "volume", "time", "side", "order_type", "misc")
V2_TRADE_FIELDS = ("symbol", "side", "price", "qty", "ord_type", "trade_id", "timestamp")
V2_DECIMAL_FIELDS = frozenset({"price", "qty"})
SNAPSHOT_SIZE = 50  # trades Kraken re-sends on (re)subscribe, v1 always, v2 when asked

V1SubscriptionStatus = Literal["subscribed", "unsubscribed", "ok", "error"]
V2TradeType = Literal["snapshot", "update"]

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _dumps(value: object, *, sort_keys: bool = True) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys)


def format_time_v1(micros: int) -> str:
    """Kraken v1 trade time: seconds since the epoch with exactly 6 decimals, as a string."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{seconds}.{fraction:06d}"


def format_timestamp_v2(micros: int) -> str:
    """Kraken v2 RFC 3339 time with microseconds and ``Z``: ``2023-09-25T07:48:36.925533Z``."""
    moment = datetime_from_micros(micros).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- client → exchange -------------------------------------------------------------------------


def _v1_channel(channel: str, depth: int | None) -> dict[str, object]:
    return {"name": channel} if depth is None else {"name": channel, "depth": depth}


def v1_subscribe(
    pairs: Sequence[str], reqid: int | None = None, channel: str = "trade", depth: int | None = None
) -> str:
    """v1 ``subscribe`` to ``channel`` (``trade``, or ``book`` at ``depth``) for ``pairs``
    (v1 names, e.g. ``XBT/USD``)."""
    request: dict[str, object] = {
        "event": "subscribe",
        "pair": list(pairs),
        "subscription": _v1_channel(channel, depth),
    }
    if reqid is not None:
        request["reqid"] = reqid
    return _dumps(request, sort_keys=False)


def v1_unsubscribe(
    pairs: Sequence[str], reqid: int | None = None, channel: str = "trade", depth: int | None = None
) -> str:
    """v1 ``unsubscribe`` from ``channel``."""
    request: dict[str, object] = {
        "event": "unsubscribe",
        "pair": list(pairs),
        "subscription": _v1_channel(channel, depth),
    }
    if reqid is not None:
        request["reqid"] = reqid
    return _dumps(request, sort_keys=False)


def v1_ping(reqid: int) -> str:
    """v1 application-level ping; Kraken answers ``{"event":"pong","reqid":reqid}``."""
    return _dumps({"event": "ping", "reqid": reqid}, sort_keys=False)


def v2_subscribe(
    symbols: Sequence[str],
    snapshot: bool,
    req_id: int | None = None,
    channel: str = "trade",
    depth: int | None = None,
) -> str:
    """v2 ``subscribe`` to ``channel`` (``trade``, or ``book`` at ``depth``); ``snapshot`` is
    always explicit (the docs disagree on its default)."""
    params: dict[str, object] = {"channel": channel, "symbol": list(symbols)}
    if depth is not None:
        params["depth"] = depth
    params["snapshot"] = snapshot
    request: dict[str, object] = {"method": "subscribe", "params": params}
    if req_id is not None:
        request["req_id"] = req_id
    return _dumps(request, sort_keys=False)


def v2_unsubscribe(
    symbols: Sequence[str],
    req_id: int | None = None,
    channel: str = "trade",
    depth: int | None = None,
) -> str:
    """v2 ``unsubscribe`` from ``channel``."""
    params: dict[str, object] = {"channel": channel, "symbol": list(symbols)}
    if depth is not None:
        params["depth"] = depth
    request: dict[str, object] = {"method": "unsubscribe", "params": params}
    if req_id is not None:
        request["req_id"] = req_id
    return _dumps(request, sort_keys=False)


def v2_ping(req_id: int) -> str:
    """v2 application-level ping; Kraken answers ``{"method":"pong","req_id":req_id,...}``."""
    return _dumps({"method": "ping", "req_id": req_id}, sort_keys=False)


# --- exchange → client: v1 ---------------------------------------------------------------------


def v1_trade_fields(
    price: str, volume: str, time: str, side: str, order_type: str, misc: str = ""
) -> dict[str, FieldValue]:
    """The ``fields`` mapping of one v1 trade (``side`` ``b``/``s``, ``order_type`` ``l``/``m``)."""
    return {
        "price": price,
        "volume": volume,
        "time": time,
        "side": side,
        "order_type": order_type,
        "misc": misc,
    }


def render_v1_trades(channel_id: int, pair: str, trades: Iterable[Mapping[str, FieldValue]]) -> str:
    """A v1 trade frame: ``[channel_id,[[price,volume,time,side,order_type,misc]],"trade",pair]``.

    Snapshot and update frames look the same on v1. Each mapping needs the six
    :data:`V1_TRADE_FIELDS` as strings; a missing or non-string field raises ``ValueError`` so a
    well-formed frame is never produced by accident from bad input (faults are made on purpose).
    """
    rows = []
    for trade in trades:
        row = [trade.get(name) for name in V1_TRADE_FIELDS]
        if not all(isinstance(value, str) for value in row):
            raise ValueError("a v1 trade needs string fields " + ", ".join(V1_TRADE_FIELDS))
        rows.append(row)
    return _dumps([channel_id, rows, "trade", pair], sort_keys=False)


def render_v1_system_status(
    connection_id: int, status: str = "online", version: str = "1.9.1"
) -> str:
    """v1 ``systemStatus`` sent on connect; ``connection_id`` is a u64 (exact in JSON)."""
    message = {"connectionID": connection_id, "event": "systemStatus"}
    return _dumps({**message, "status": status, "version": version})


def _v1_subscription(depth: int | None) -> tuple[str, dict[str, object]]:
    """The channel name and the ``subscription`` of a v1 ack: ``trade``, or ``book-<depth>``."""
    if depth is None:
        return "trade", {"name": "trade"}
    return f"{V1_BOOK_PREFIX}{depth}", {"depth": depth, "name": "book"}


def render_v1_subscription_status(
    pair: str,
    channel_id: int,
    status: V1SubscriptionStatus = "subscribed",
    reqid: int | None = None,
    depth: int | None = None,
) -> str:
    """v1 per-pair ``subscriptionStatus`` ack for the ``trade`` channel (for ``book`` with its
    ``depth`` when one is given)."""
    channel, subscription = _v1_subscription(depth)
    message: dict[str, object] = {
        "channelID": channel_id,
        "channelName": channel,
        "event": "subscriptionStatus",
        "pair": pair,
        "status": status,
        "subscription": subscription,
    }
    if reqid is not None:
        message["reqid"] = reqid
    return _dumps(message)


def render_v1_subscription_error(
    pair: str, error_message: str, reqid: int | None = None, depth: int | None = None
) -> str:
    """v1 rejected subscription, e.g. ``error_message="Currency pair not supported LSK/XBT"``
    (of ``book`` when a ``depth`` is given)."""
    message: dict[str, object] = {
        "errorMessage": error_message,
        "event": "subscriptionStatus",
        "pair": pair,
        "status": "error",
        "subscription": _v1_subscription(depth)[1],
    }
    if reqid is not None:
        message["reqid"] = reqid
    return _dumps(message)


def render_v1_book(
    channel_id: int,
    pair: str,
    depth: int,
    bids: Sequence[tuple[str, str]],
    asks: Sequence[tuple[str, str]],
    time: str,
    checksum: int | None,
) -> str:
    """A v1 ``book-<depth>`` frame, levels ``[price, volume, time]`` as strings: the snapshot
    (``checksum`` None) ``[id,{"as":[...],"bs":[...]},name,pair]``, or an update with its
    checksum in the last object: ``{"a":[...],"c":"..."}``, ``{"b":[...],"c":"..."}``, or both
    sides as two objects."""
    name = f"{V1_BOOK_PREFIX}{depth}"
    asks_rows = [[price, volume, time] for price, volume in asks]
    bids_rows = [[price, volume, time] for price, volume in bids]
    if checksum is None:
        return _dumps([channel_id, {"as": asks_rows, "bs": bids_rows}, name, pair])
    bodies: list[dict[str, object]] = []
    if asks_rows:
        bodies.append({"a": asks_rows})
    if bids_rows or not bodies:
        bodies.append({"b": bids_rows})
    bodies[-1]["c"] = str(checksum)
    return _dumps([channel_id, *bodies, name, pair], sort_keys=False)


def render_v1_error(error_message: str, reqid: int | None = None) -> str:
    """v1 generic ``error`` event (e.g. ``Malformed request``)."""
    message: dict[str, object] = {"errorMessage": error_message, "event": "error"}
    if reqid is not None:
        message["reqid"] = reqid
    return _dumps(message)


def render_v1_heartbeat() -> str:
    """v1 heartbeat, sent after about 1 s without subscription traffic."""
    return '{"event":"heartbeat"}'


def render_v1_pong(reqid: int | None) -> str:
    """v1 answer to an application ping, echoing ``reqid``."""
    if reqid is None:
        return '{"event":"pong"}'
    return _dumps({"event": "pong", "reqid": reqid})


def render_rate_limit_error() -> str:
    """What Kraken sends (v1 and v2) when a connection exceeds its message rate."""
    return '{"Error":"Exceeded msg rate"}'


# --- exchange → client: v2 ---------------------------------------------------------------------


def v2_trade_fields(
    symbol: str,
    side: str,
    price: str,
    qty: str,
    ord_type: str,
    trade_id: int,
    timestamp: str,
) -> dict[str, FieldValue]:
    """The ``fields`` mapping of one v2 trade (``price``/``qty`` as decimal text)."""
    return {
        "symbol": symbol,
        "side": side,
        "price": price,
        "qty": qty,
        "ord_type": ord_type,
        "trade_id": trade_id,
        "timestamp": timestamp,
    }


def _json_number(name: str, value: FieldValue) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and _JSON_NUMBER.fullmatch(value):
        return value
    raise ValueError(f"v2 field {name} must be decimal text or an int, got {value!r}")


_PLAIN_TEXT = re.compile(r"[A-Za-z0-9/:.+_ -]*")  # text json.dumps writes as it is, quoted


def _plain(value: FieldValue) -> bool:
    return isinstance(value, str) and _PLAIN_TEXT.fullmatch(value) is not None


def v2_trade_text(
    symbol: str, side: str, price: str, qty: str, ord_type: str, trade_id: int | str, timestamp: str
) -> str:
    """One v2 trade object as text, for values that need no JSON escaping (plain ASCII names,
    decimal text for ``price``/``qty``): exactly what :func:`render_v2_trades` writes."""
    return (
        f'{{"symbol":"{symbol}","side":"{side}","price":{price},"qty":{qty},'
        f'"ord_type":"{ord_type}","trade_id":{trade_id},"timestamp":"{timestamp}"}}'
    )


def v2_trade_template(symbol: str) -> str:
    """:func:`v2_trade_text` of one symbol as a ``%`` template of ``(side, price, qty, ord_type,
    trade_id, time up to the second, microseconds)``: one formatting operation per trade (the
    simulator's hot path), the same text."""
    escaped = symbol.replace("%", "%%")
    return v2_trade_text(escaped, "%s", "%s", "%s", "%s", "%d", "%s%06dZ")


def render_v2_trade_texts(objects: Iterable[str], type_: V2TradeType) -> str:
    """A v2 trade frame of trade objects already written as text (see :func:`v2_trade_text`)."""
    return '{"channel":"trade","type":"' + type_ + '","data":[' + ",".join(objects) + "]}"


def _v2_trade_object(trade: Mapping[str, FieldValue]) -> str:
    symbol, side, ord_type = trade.get("symbol"), trade.get("side"), trade.get("ord_type")
    price, qty, trade_id = trade.get("price"), trade.get("qty"), trade.get("trade_id")
    timestamp = trade.get("timestamp")
    if (  # the common trade: the same text as below, without a json.dumps per value
        len(trade) == len(V2_TRADE_FIELDS)
        and _plain(symbol)
        and _plain(side)
        and _plain(ord_type)
        and _plain(timestamp)
        and type(trade_id) is int
        and isinstance(price, str)
        and isinstance(qty, str)
        and _JSON_NUMBER.fullmatch(price)
        and _JSON_NUMBER.fullmatch(qty)
    ):
        return v2_trade_text(symbol, side, price, qty, ord_type, trade_id, timestamp)  # type: ignore[arg-type]
    names = [name for name in V2_TRADE_FIELDS if name in trade]
    names += [name for name in trade if name not in V2_TRADE_FIELDS]
    parts = []
    for name in names:
        value = trade[name]
        text = _json_number(name, value) if name in V2_DECIMAL_FIELDS else json.dumps(value)
        parts.append(json.dumps(name) + ":" + text)
    return "{" + ",".join(parts) + "}"


def render_v2_trades(trades: Iterable[Mapping[str, FieldValue]], type_: V2TradeType) -> str:
    """A v2 trade frame: ``{"channel":"trade","type":type_,"data":[...]}``.

    ``price`` and ``qty`` are written as bare JSON numbers with exactly the given decimal text
    (Kraken publishes engine precision as numbers), everything else as JSON values.
    """
    data = ",".join(_v2_trade_object(trade) for trade in trades)
    return '{"channel":"trade","type":' + json.dumps(type_) + ',"data":[' + data + "]}"


def render_v2_status(
    connection_id: int, system: str = "online", version: str = "2.0.0", api_version: str = "v2"
) -> str:
    """v2 ``status`` update sent on connect; ``connection_id`` is a u64 (exact in JSON)."""
    entry = {
        "api_version": api_version,
        "connection_id": connection_id,
        "system": system,
        "version": version,
    }
    return _dumps({"channel": "status", "data": [entry], "type": "update"})


def render_v2_subscribe_ack(
    symbol: str,
    snapshot: bool,
    req_id: int | None,
    time_in: str,
    time_out: str,
    *,
    channel: str = "trade",
    depth: int | None = None,
) -> str:
    """v2 per-symbol successful ``subscribe`` ack of the ``trade`` channel, or of ``book`` with
    its ``depth``."""
    result: dict[str, object] = {"channel": channel, "snapshot": snapshot, "symbol": symbol}
    if depth is not None:
        result["depth"] = depth
    message: dict[str, object] = {
        "method": "subscribe",
        "result": result,
        "success": True,
        "time_in": time_in,
        "time_out": time_out,
    }
    if req_id is not None:
        message["req_id"] = req_id
    return _dumps(message)


def render_v2_unsubscribe_ack(
    symbol: str, req_id: int | None, time_in: str, time_out: str, *, channel: str = "trade"
) -> str:
    """v2 per-symbol successful ``unsubscribe`` ack (of ``trade`` unless said otherwise)."""
    message: dict[str, object] = {
        "method": "unsubscribe",
        "result": {"channel": channel, "symbol": symbol},
        "success": True,
        "time_in": time_in,
        "time_out": time_out,
    }
    if req_id is not None:
        message["req_id"] = req_id
    return _dumps(message)


def render_v2_method_error(
    method: str,
    error: str,
    req_id: int | None,
    time_in: str,
    time_out: str,
    symbol: str | None = None,
) -> str:
    """v2 failed request, e.g. ``subscribe``, ``error="Currency pair not supported XBT/EUR"``."""
    message: dict[str, object] = {
        "error": error,
        "method": method,
        "success": False,
        "time_in": time_in,
        "time_out": time_out,
    }
    if symbol is not None:
        message["symbol"] = symbol
    if req_id is not None:
        message["req_id"] = req_id
    return _dumps(message)


def render_v2_book(
    symbol: str,
    type_: V2TradeType,
    bids: Sequence[tuple[str, str]],
    asks: Sequence[tuple[str, str]],
    checksum: int,
    timestamp: str,
) -> str:
    """A v2 ``book`` message of one symbol: levels as ``(price, qty)`` decimal text, written as
    bare JSON numbers with exactly that text (the checksum is taken over it)."""
    for price, qty in (*bids, *asks):
        _json_number("price", price)
        _json_number("qty", qty)
    row = (
        '{"symbol":'
        + json.dumps(symbol)
        + ',"bids":'
        + _v2_levels(bids)
        + ',"asks":'
        + _v2_levels(asks)
        + ',"checksum":'
        + str(checksum)
        + ',"timestamp":'
        + json.dumps(timestamp)
        + "}"
    )
    return '{"channel":"book","type":' + json.dumps(type_) + ',"data":[' + row + "]}"


def _v2_levels(levels: Sequence[tuple[str, str]]) -> str:
    return "[" + ",".join(f'{{"price":{price},"qty":{qty}}}' for price, qty in levels) + "]"


def render_v2_heartbeat() -> str:
    """v2 heartbeat, sent about once a second without other channel updates."""
    return '{"channel":"heartbeat"}'


def render_v2_pong(req_id: int | None, time_in: str, time_out: str) -> str:
    """v2 answer to an application ping."""
    message: dict[str, object] = {"method": "pong", "time_in": time_in, "time_out": time_out}
    if req_id is not None:
        message["req_id"] = req_id
    return _dumps(message)


# --- REST reference data --------------------------------------------------------------------


def render_asset_pairs(wsnames: Iterable[str]) -> str:
    """A ``GET /0/public/AssetPairs`` response listing pairs by their v1 ``wsname``.

    Entries carry the fields K2 reads (``altname``, ``wsname``, ``base``, ``quote``, ``status``);
    the key is the altname (Kraken's X/Z-prefixed legacy keys are not needed by any client).
    """
    result: dict[str, dict[str, object]] = {}
    for wsname in wsnames:
        base, _, quote = wsname.partition("/")
        altname = base + quote
        result[altname] = {
            "altname": altname,
            "wsname": wsname,
            "aclass_base": "currency",
            "base": base,
            "aclass_quote": "currency",
            "quote": quote,
            "status": "online",
        }
    return _dumps({"error": [], "result": result}, sort_keys=False)
