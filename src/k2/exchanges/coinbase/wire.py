"""Coinbase Advanced Trade's public WebSocket and the REST it is read with, in both directions.

Client → exchange: ``subscribe``/``unsubscribe`` requests, one channel each ("You can only
subscribe to one channel per subscription message", docs.cdp.coinbase.com/coinbase-app/
advanced-trade-apis/websocket/websocket-overview); the public market channels need no ``jwt``.
Exchange → client: ``render_*`` functions that produce messages exactly as Coinbase sends them,
in the order of its documentation example: every message an envelope of ``channel``,
``client_id``, ``timestamp`` (RFC 3339 with nanoseconds), ``sequence_num`` (counted per
connection across every channel) and ``events``; a ``market_trades`` event is ``snapshot`` or
``update`` with ``trades`` newest first (as ccxt's coinbase ``handle_trade`` reads them), each
trade ``trade_id`` (text), ``product_id``, ``price``/``size`` (decimal text), ``side`` and
``time`` (RFC 3339, ms to ns digits).

A trade is rendered from the same ``fields`` mapping a parsed
:class:`~k2.exchanges.base.RawTrade` carries (the trade object's six values as sent), so
``parse(render(fields)) == fields``. The REST side is the public products list of the Advanced
Trade API and the Exchange API's trade history (``/products/{id}/trades``, paged by trade id).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from typing import Literal

from k2.domain import datetime_from_micros
from k2.exchanges.base import FieldValue

WS_URL = "wss://advanced-trade-ws.coinbase.com"
REST_URL = "https://api.coinbase.com"  # Advanced Trade: products
# The Exchange API's public trade history: same matching engine and trade ids, paged by id.
HISTORY_URL = "https://api.exchange.coinbase.com"
PRODUCTS_PATH = "/api/v3/brokerage/market/products"
HISTORY_PAGE_ROWS = 1000  # "limit: Number of results per request. Maximum 1000" (pagination doc)

MARKET_TRADES = "market_trades"
LEVEL2 = "level2"  # the order book channel a subscription names
L2_DATA = "l2_data"  # the channel its messages carry
L2_SIDES = {True: "bid", False: "offer"}  # a level's side as level2 names it (bid or not)
HEARTBEATS = "heartbeats"
SUBSCRIPTIONS = "subscriptions"
# docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-rate-limits.md:
# connections "8 per second per IP address", unauthenticated messages "8 per second per IP
# address" (another version says 750 connections a second: the stricter figure holds).
CONNECTIONS_PER_S = 8
MESSAGES_PER_S = 8
SUBSCRIBE_DEADLINE_S = 5.0  # "disconnected if no subscribe has been received within 5 seconds"
# "Most channels close within 60-90 seconds if no updates are sent" (websocket-channels)
CHANNEL_IDLE_S = 60.0

TRADE_FIELDS = ("trade_id", "product_id", "price", "size", "side", "time")
# What a trade's record adds from the message it came in.
MESSAGE_FIELDS = ("sequence_num", "timestamp", "event_type")

EventType = Literal["snapshot", "update"]


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def format_time(micros: int) -> str:
    """A trade ``time`` with microseconds: ``2023-01-11T00:52:37.557001Z``."""
    return datetime_from_micros(micros).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_timestamp(nanos: int) -> str:
    """A message ``timestamp`` with nanoseconds: ``2023-02-09T20:19:35.396251350Z``."""
    seconds, fraction = divmod(nanos, 1_000_000_000)
    whole = datetime_from_micros(seconds * 1_000_000).astimezone(UTC)
    return whole.strftime("%Y-%m-%dT%H:%M:%S.") + f"{fraction:09d}Z"


# --- client → exchange ------------------------------------------------------------------------


def subscribe(channel: str, product_ids: Sequence[str]) -> str:
    """``{"type":"subscribe","product_ids":[...],"channel":...}``: one channel per message."""
    return _dumps({"type": "subscribe", "product_ids": list(product_ids), "channel": channel})


def unsubscribe(channel: str, product_ids: Sequence[str]) -> str:
    """The same shape with ``unsubscribe``."""
    return _dumps({"type": "unsubscribe", "product_ids": list(product_ids), "channel": channel})


# --- exchange → client ------------------------------------------------------------------------


def trade_fields(
    trade_id: int | str, product_id: str, price: str, size: str, side: str, time: str
) -> dict[str, FieldValue]:
    """The ``fields`` of one trade object (``trade_id`` as the text Coinbase sends)."""
    return {
        "trade_id": str(trade_id),
        "product_id": product_id,
        "price": price,
        "size": size,
        "side": side,
        "time": time,
    }


_PLAIN_TEXT = re.compile(r"[A-Za-z0-9.:+_-]*")  # text json.dumps writes as it is, quoted


def trade_text(trade_id: str, product_id: str, price: str, size: str, side: str, time: str) -> str:
    """One trade object as text, for values that need no JSON escaping: exactly what
    :func:`render_trade_object` writes for them."""
    return (
        f'{{"trade_id":"{trade_id}","product_id":"{product_id}","price":"{price}",'
        f'"size":"{size}","side":"{side}","time":"{time}"}}'
    )


def render_trade_object(fields: Mapping[str, FieldValue]) -> str:
    """A trade object in Coinbase's key order (further keys after them, as given)."""
    values = [fields.get(name) for name in TRADE_FIELDS]
    if len(fields) == len(TRADE_FIELDS) and all(
        isinstance(v, str) and _PLAIN_TEXT.fullmatch(v) for v in values
    ):
        return trade_text(*(str(v) for v in values))
    ordered = {name: fields[name] for name in TRADE_FIELDS if name in fields}
    ordered.update({name: value for name, value in fields.items() if name not in ordered})
    return _dumps(ordered)


def _envelope(channel: str, sequence_num: int, timestamp: str, events: str) -> str:
    return (
        f'{{"channel":"{channel}","client_id":"","timestamp":{json.dumps(timestamp)},'
        f'"sequence_num":{sequence_num},"events":{events}}}'
    )


def render_market_trades_texts(
    trades: Iterable[str], event_type: EventType, sequence_num: int, timestamp: str
) -> str:
    """A ``market_trades`` message of one event whose trades are already text (newest first)."""
    events = f'[{{"type":"{event_type}","trades":[' + ",".join(trades) + "]}]"
    return _envelope(MARKET_TRADES, sequence_num, timestamp, events)


def render_market_trades(
    trades: Iterable[Mapping[str, FieldValue]],
    event_type: EventType,
    sequence_num: int,
    timestamp: str,
) -> str:
    """A ``market_trades`` message of one event; ``trades`` in the order given (Coinbase sends
    the newest first)."""
    return render_market_trades_texts(
        (render_trade_object(trade) for trade in trades), event_type, sequence_num, timestamp
    )


def render_l2_data(
    product_id: str,
    event_type: EventType,
    updates: Sequence[tuple[str, str, str]],
    event_time: str,
    sequence_num: int,
    timestamp: str,
) -> str:
    """An ``l2_data`` message of one product's event: each update ``(side, price_level,
    new_quantity)`` with ``side`` ``bid`` or ``offer``; ``"0"`` removes the level."""
    rows = [
        {"side": side, "event_time": event_time, "price_level": price, "new_quantity": size}
        for side, price, size in updates
    ]
    events = _dumps([{"type": event_type, "product_id": product_id, "updates": rows}])
    return _envelope(L2_DATA, sequence_num, timestamp, events)


def render_subscriptions(
    subscriptions: Mapping[str, Sequence[str]], sequence_num: int, timestamp: str
) -> str:
    """The ``subscriptions`` message that answers every subscribe and unsubscribe: every
    channel the connection is subscribed to, with its products."""
    events = _dumps([{"subscriptions": {k: list(v) for k, v in subscriptions.items()}}])
    return _envelope(SUBSCRIPTIONS, sequence_num, timestamp, events)


def format_current_time(nanos: int, uptime_s: float) -> str:
    """A heartbeat's ``current_time``, Go's time text as Coinbase sends it:
    ``2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105``."""
    text = format_timestamp(nanos)
    return f"{text[:10]} {text[11:-1]} +0000 UTC m=+{uptime_s:.9f}"


def render_heartbeats(sequence_num: int, timestamp: str, current_time: str, counter: int) -> str:
    """A ``heartbeats`` message, once a second while subscribed; the counter is sent as text."""
    events = _dumps([{"current_time": current_time, "heartbeat_counter": str(counter)}])
    return _envelope(HEARTBEATS, sequence_num, timestamp, events)


def render_error(message: str, reason: str | None = None) -> str:
    """An error, which carries no envelope: ``{"type":"error","message":...}``."""
    error: dict[str, str] = {"type": "error", "message": message}
    if reason is not None:
        error["reason"] = reason
    return _dumps(error)


# --- REST -------------------------------------------------------------------------------------


def product_entry(
    product_id: str,
    base: str,
    quote: str,
    status: str = "online",
    trading_disabled: bool = False,
    alias: str = "",
    alias_to: Sequence[str] = (),
) -> dict[str, object]:
    """One entry of the public products list, with the fields K2 reads."""
    return {
        "product_id": product_id,
        "base_currency_id": base,
        "quote_currency_id": quote,
        "status": status,
        "trading_disabled": trading_disabled,
        "is_disabled": False,
        "product_type": "SPOT",
        "alias": alias,
        "alias_to": list(alias_to),
    }


def render_products(entries: Sequence[Mapping[str, object]]) -> str:
    """``GET /api/v3/brokerage/market/products``: ``{"products":[...],"num_products":N}``."""
    return _dumps({"products": list(entries), "num_products": len(entries)})


def history_row(
    trade_id: int, price: str, size: str, maker_side: str, time: str
) -> dict[str, object]:
    """One row of the Exchange API's ``/products/{id}/trades``: ``side`` is the maker's, in
    lower case, and ``trade_id`` a JSON integer."""
    return {"time": time, "trade_id": trade_id, "price": price, "size": size, "side": maker_side}
