"""Kraken WebSocket v1 (``wss://ws.kraken.com``), the exchange side, public ``trade`` channel.

The conversation follows the simulator checklist of ``docs/exchange-protocols.md``:
``systemStatus`` with a u64 ``connectionID`` on connect; one ``subscriptionStatus`` per pair;
right after each ack, the last 50 trades as one ordinary trade frame (v1 has no snapshot flag);
then updates; ``{"event":"heartbeat"}`` after about a second without trade traffic once
subscribed; ``pong`` echoing ``reqid``. Pairs are the AssetPairs ``wsname`` (``XBT/USD``); a pair
the exchange does not list gets ``Currency pair not supported <PAIR>``, a name that is not
``BASE/QUOTE`` gets ``Currency pair not in ISO 4217-A3 format <PAIR>``. The ``trade`` and ``book``
subscriptions are simulated (``book`` in :mod:`k2.simulator.exchanges.kraken.books`); other
subscription names are refused (``Subscription name invalid``).
A connection that has not subscribed after ``kraken_idle_s`` (60 s, as Kraken) is closed; one
that sends more than ``kraken_msg_rate`` messages in a second gets ``{"Error":"Exceeded msg
rate"}`` and the message is not acted on (Kraken's limit is dynamic; this stands in for it).

Every frame is rendered by :mod:`k2.exchanges.kraken.wire`, the one definition of the format.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from k2.exchanges.base import FieldValue
from k2.exchanges.kraken import EXCHANGE, wire
from k2.simulator.book import BookStep
from k2.simulator.exchanges.kraken import books
from k2.simulator.exchanges.kraken.settings import section
from k2.simulator.limits import MessageRate
from k2.simulator.market import AggTrade, SimTrade
from k2.simulator.session import BookSubscription, Rendered, Session, Subscription

PROTOCOL = "kraken-v1"
SYSTEM_VERSION = "1.9.1"
SIDE_LETTER = {"buy": "b", "sell": "s"}
EXCEEDED_MSG_RATE = "Exceeded msg rate"  # Kraken's answer to a client sending too fast
ORDER_LETTER = {"limit": "l", "market": "m"}


@dataclass(eq=False, kw_only=True)
class _Pair(Subscription):
    """One pair's subscription; ``listed`` is the pair as v1 spells it."""

    channel_id: int


def v1_fields(trade: SimTrade) -> dict[str, FieldValue]:
    """The v1 field mapping of a history trade (exact strings, taker side/type letters)."""
    return wire.v1_trade_fields(
        trade.price,
        trade.qty,
        wire.format_time_v1(trade.time_us),
        SIDE_LETTER[trade.side],
        ORDER_LETTER[trade.ord_type],
    )


class KrakenV1Session(Session):
    """One ``wss://ws.kraken.com`` connection."""

    protocol = PROTOCOL
    exchange = EXCHANGE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pairs: dict[str, _Pair] = {}
        self.ever_subscribed = False
        self.connection_id = self.ctx.exchange_connection_id()
        self.settings = section(self.ctx.config)
        self.rate = MessageRate(self.settings.msg_rate)
        self.books = books.KrakenV1Books(self, PROTOCOL)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "subscriptions": sorted(self.pairs)}

    async def on_open(self) -> None:
        await self.send_control(
            wire.render_v1_system_status(self.connection_id, "online", SYSTEM_VERSION)
        )

    async def on_text(self, text: str) -> None:
        if not self.rate.allow():
            await self.send_control(json.dumps({"Error": EXCEEDED_MSG_RATE}))
            return
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            await self.send_control(wire.render_v1_error("Malformed request"))
            return
        reqid = message.get("reqid")
        reqid = reqid if isinstance(reqid, int) and not isinstance(reqid, bool) else None
        event = message.get("event")
        if event == "ping":
            await self.send_control(wire.render_v1_pong(reqid))
        elif event == "subscribe":
            await self._subscribe(message, reqid)
            self.nudge()
        elif event == "unsubscribe":
            await self._unsubscribe(message, reqid)
        else:
            await self.send_control(wire.render_v1_error("Event(s) not found", reqid))

    def _request_error(self, message: dict[str, Any]) -> str | None:
        subscription = message.get("subscription")
        if not isinstance(subscription, dict):
            return "Subscription field must be an object"
        if subscription.get("name") not in ("trade", books.CHANNEL):
            return "Subscription name invalid"
        if subscription.get("name") == books.CHANNEL:
            depth_problem = books.depth_error(subscription.get("depth", books.DEFAULT_DEPTH))
            if depth_problem is not None:
                return depth_problem
        if "pair" not in message:
            return "Pair(s) not found"
        if not isinstance(message["pair"], list):
            return "Pair field must be an array"
        return None

    def _pair_error(self, pair: object, depth: int | None) -> str | None:
        if not isinstance(pair, str) or pair.count("/") != 1:
            return f"Currency pair not in ISO 4217-A3 format {pair}"
        if pair not in self.market.instruments or self.faults.rejects(pair):
            return f"Currency pair not supported {pair}"
        if pair in (self.pairs if depth is None else self.books.subs):
            return "Already subscribed"
        return None

    async def _subscribe(self, message: dict[str, Any], reqid: int | None) -> None:
        problem = self._request_error(message)
        if problem is not None:
            await self.send_control(wire.render_v1_error(problem, reqid))
            return
        depth = _book_depth(message)
        for pair in message["pair"]:
            problem = self._pair_error(pair, depth)
            if problem is not None:
                await self.send_control(
                    wire.render_v1_subscription_error(str(pair), problem, reqid, depth)
                )
                continue
            if depth is None:
                await self._start_pair(pair, reqid)
            else:
                await self._start_book(pair, depth, reqid)

    async def _start_book(self, pair: str, depth: int, reqid: int | None) -> None:
        channel_id = _channel_id(list(self.market.instruments), pair) + 1
        sub = self.books.subscribe(pair, self.market.instruments[pair], depth, channel_id)
        self.ever_subscribed = True
        await self.send_control(
            wire.render_v1_subscription_status(pair, channel_id, "subscribed", reqid, depth)
        )
        await self.books.send_snapshot(sub)
        sub.active = True

    async def _start_pair(self, pair: str, reqid: int | None) -> None:
        history = self.market.histories[pair]
        snapshot = history.recent_visible(self.ctx.config.snapshot_size)
        channel_id = _channel_id(list(self.market.instruments), pair)
        entry = _Pair(pair, history.trade_end, active=False, channel_id=channel_id)
        self.pairs[pair] = entry
        self.ever_subscribed = True
        await self.send_control(
            wire.render_v1_subscription_status(pair, entry.channel_id, "subscribed", reqid)
        )
        if snapshot and self.stall is None:
            room = self.trade_room(len(snapshot))
            if room:
                await self._send(entry, snapshot[-room:], snapshot=True)
        entry.active = True

    async def _unsubscribe(self, message: dict[str, Any], reqid: int | None) -> None:
        problem = self._request_error(message)
        if problem is not None:
            await self.send_control(wire.render_v1_error(problem, reqid))
            return
        depth = _book_depth(message)
        for pair in message["pair"]:
            key = pair if isinstance(pair, str) else ""
            entry = self.pairs.pop(key, None) if depth is None else self.books.unsubscribe(key)
            if entry is None:
                error = wire.render_v1_subscription_error(
                    str(pair), "Subscription Not Found", reqid, depth
                )
                await self.send_control(error)
                continue
            await self.send_control(
                wire.render_v1_subscription_status(
                    key, entry.channel_id, "unsubscribed", reqid, depth
                )
            )

    async def _send(self, entry: _Pair, trades: list[SimTrade], snapshot: bool) -> None:
        def render() -> Rendered:
            emitted = [(trade.trade_id, v1_fields(trade)) for trade in trades]
            frame = wire.render_v1_trades(entry.channel_id, entry.listed, [f for _, f in emitted])
            return frame, emitted

        key = (PROTOCOL, entry.listed, trades[0].trade_id, trades[-1].trade_id, len(trades))
        frame, emitted = self.ctx.frames.get(key, render)
        await self.emit(frame, entry.listed, emitted, protocol=PROTOCOL, snapshot=snapshot)

    def subscriptions(self) -> Iterable[_Pair]:
        return self.pairs.values()

    def book_subscriptions(self) -> Iterable[BookSubscription]:
        return self.books.subs.values()

    async def send_book_steps(self, sub: BookSubscription, steps: list[BookStep]) -> bool:
        assert isinstance(sub, books.KrakenBookSubscription)
        return await self.books.send_steps(sub, steps)

    async def send_new(self, sub: Subscription, items: list[SimTrade] | list[AggTrade]) -> bool:
        assert isinstance(sub, _Pair)
        return await self.send_batched(
            cast(list[SimTrade], items), lambda chunk: self._send(sub, chunk, snapshot=False)
        )

    def wakeup_in(self) -> float:
        if not (self.pairs or self.books.subs):
            return 1.0
        return max(0.0, self.last_traffic + self.ctx.config.heartbeat_s - time.monotonic())

    async def on_timer(self) -> bool:
        now = time.monotonic()
        config = self.ctx.config
        if not self.ever_subscribed and now - self.opened >= self.settings.idle_s:
            await self.close(1000, "no subscription")
            return False
        subscribed = self.pairs or self.books.subs
        if subscribed and now - self.last_traffic >= config.heartbeat_s:
            self.last_traffic = now
            await self.send_control(wire.render_v1_heartbeat())
        return True


def _book_depth(message: dict[str, Any]) -> int | None:
    """The depth of a ``book`` request (None for ``trade``); the request was checked."""
    subscription = message["subscription"]
    if subscription.get("name") != books.CHANNEL:
        return None
    depth: int = subscription.get("depth", books.DEFAULT_DEPTH)
    return depth


def _channel_id(symbols: list[str], pair: str) -> int:
    """A stable per-pair channel id, as Kraken v1 gives each pair's channel one number."""
    return 100 + 32 * symbols.index(pair) + 1
