"""Bybit v5 spot public stream (``wss://stream.bybit.com/v5/public/spot``), the exchange side.

Nothing is sent on connect. ``{"op":"subscribe","args":[...]}`` names at most ``max_args``
topics (10 on spot): more refuses the whole request with ``args size >10``; a
``publicTrade.<SYMBOL>`` of a symbol the exchange does not list (or a fault rejects) refuses it
with ``Invalid symbol :[publicTrade.<SYMBOL>]`` naming every such topic, and a topic already
subscribed with ``error:already subscribed,topic:<topic>``; otherwise the ack is
``{"success":true,"ret_msg":"subscribe","conn_id":...,"req_id":...,"op":"subscribe"}``, the
``req_id`` echoed when the request had one. ``orderbook.<depth>.<SYMBOL>`` topics (depths 1, 50,
200, 1000) send the symbol's book (:mod:`k2.simulator.exchanges.bybit.books`); topics of other
channels are acknowledged and stay quiet. No trade snapshot follows: a trade subscription is
real-time only. ``{"op":"ping"}`` is answered
with the spot pong. A connection with neither a ping from the client nor data from the exchange
for ``idle_s`` (10 minutes on Bybit) is cut. Trades are pushed one frame per symbol per market
tick, oldest first, ids from the one counter every symbol shares (:mod:`.ids`). Frames are
rendered by :mod:`k2.exchanges.bybit.wire`.

Not documented by Bybit, chosen here: a frame that is not a JSON object with an ``op`` is
answered ``success: false`` with ``error:request not recognised``; a refused subscribe request
subscribes none of its topics (as ``args size >10`` does on the exchange).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from k2.exchanges.base import FieldValue
from k2.exchanges.bybit import EXCHANGE, wire
from k2.simulator.book import BookStep
from k2.simulator.exchanges.bybit import books
from k2.simulator.exchanges.bybit.ids import SharedIds
from k2.simulator.exchanges.bybit.settings import section
from k2.simulator.market import AggTrade, SimTrade
from k2.simulator.session import BookSubscription, Rendered, Session, Subscription

PROTOCOL = "bybit-spot"
SIDES = {"buy": "Buy", "sell": "Sell"}
_NO_FIELDS: dict[str, FieldValue] = {}  # trades of a frame rendered without a ledger


@dataclass(eq=False, kw_only=True)
class _Topic(Subscription):
    """One ``publicTrade`` subscription (``listed`` is its symbol)."""

    topic: str


class BybitSession(Session):
    """One Bybit spot public connection."""

    protocol = PROTOCOL
    exchange = EXCHANGE

    def __init__(self, *args: Any, ids: SharedIds, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = section(self.ctx.config)
        self.ids = ids
        high, low = self.ctx.exchange_connection_id(), self.ctx.exchange_connection_id()
        self.conn_id = str(uuid.UUID(int=(high << 64) | low))
        self.topics: dict[str, _Topic] = {}
        self.quiet: set[str] = set()  # topics of other channels: acknowledged, never sent
        self.last_ping = self.opened
        self._objects: dict[str, str | None] = {}
        self._frames: dict[str, str | None] = {}
        self.books = books.BybitBooks(self, PROTOCOL)

    def describe(self) -> dict[str, Any]:
        subscribed = [*self.topics, *self.books.subs, *self.quiet]
        return {**super().describe(), "subscriptions": subscribed}

    # --- requests -------------------------------------------------------------------------------

    async def on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            error = "error:request not recognised"
            await self.send_control(wire.render_ack("", self.conn_id, None, False, error))
            return
        req_id = message.get("req_id")
        req = req_id if isinstance(req_id, str) else None if req_id is None else str(req_id)
        op, args = message["op"], message.get("args")
        if op == "ping":
            self.last_ping = time.monotonic()
            await self.send_control(wire.render_pong(self.conn_id, req))
        elif op in ("subscribe", "unsubscribe") and isinstance(args, list):
            topics = [str(arg) for arg in args]
            if op == "subscribe":
                await self._subscribe(topics, req)
            else:
                await self._unsubscribe(topics, req)
        else:
            error = f"error:unsupported op {op}"
            await self.send_control(wire.render_ack(op, self.conn_id, req, False, error))

    async def _subscribe(self, topics: list[str], req: str | None) -> None:
        refusal = self._refusal(topics)
        if refusal is not None:
            await self.send_control(wire.render_ack("subscribe", self.conn_id, req, False, refusal))
            return
        snapshots = []
        for name in dict.fromkeys(topics):
            symbol, book = wire.symbol_of(name), wire.book_of(name)
            if book is not None:
                depth, listed = book
                instrument = self.market.instruments[listed]
                snapshots.append(self.books.subscribe(name, depth, instrument))
            elif symbol is None:
                self.quiet.add(name)
            else:
                history = self.market.histories[symbol]
                self.topics[name] = _Topic(symbol, history.trade_end, topic=name)
        await self.send_control(wire.render_ack("subscribe", self.conn_id, req))
        for sub in snapshots:
            await self.books.send_snapshot(sub, self.market.books[sub.listed].update_id)
            sub.active = True
        self.nudge()

    def _refusal(self, topics: list[str]) -> str | None:
        """Why the exchange refuses the whole request, or None."""
        if len(topics) > self.settings.max_args:
            return wire.ARGS_TOO_MANY
        unknown = []
        for name in topics:
            book = wire.book_of(name)
            symbol = wire.symbol_of(name) if book is None else book[1]
            listed = symbol in self.market.instruments and symbol not in self.market.delisted
            if symbol is not None and (not listed or self.faults.rejects(symbol)):
                unknown.append(name)
        if unknown:
            return wire.invalid_symbols(unknown)
        taken = next((name for name in topics if name in self.topics or name in self.quiet
                      or name in self.books.subs), None)  # fmt: skip
        if taken is not None:
            return f"error:already subscribed,topic:{taken}"
        return None

    async def _unsubscribe(self, topics: list[str], req: str | None) -> None:
        for name in topics:
            removed = self.topics.pop(name, None)
            if removed is not None:
                removed.active = False
            self.books.unsubscribe(name)
            self.quiet.discard(name)
        await self.send_control(wire.render_ack("unsubscribe", self.conn_id, req))

    # --- trades ---------------------------------------------------------------------------------

    def subscriptions(self) -> Iterable[_Topic]:
        return self.topics.values()

    def book_subscriptions(self) -> Iterable[BookSubscription]:
        return self.books.subs.values()

    async def send_book_steps(self, sub: BookSubscription, steps: list[BookStep]) -> bool:
        assert isinstance(sub, books.BybitBookTopic)
        return await self.books.send_steps(sub, steps)

    async def send_new(self, sub: Subscription, items: list[SimTrade] | list[AggTrade]) -> bool:
        assert isinstance(sub, _Topic)
        return await self.send_batched(
            cast(list[SimTrade], items), lambda chunk: self._send(sub.listed, chunk)
        )

    def _fields(self, symbol: str, trade: SimTrade, push_ms: int) -> dict[str, FieldValue]:
        """One trade's fields, ``ts`` the push's (the time of its newest trade)."""
        when = trade.time_us // 1_000
        side = SIDES[trade.side]
        return wire.trade_fields(
            symbol, self.ids.text(symbol, trade.trade_id), trade.price, trade.qty, when, side,
            trade.trade_id, push_ms,
        )  # fmt: skip

    def _render(self, symbol: str, trades: list[SimTrade]) -> Rendered:
        if not self.ctx.ledger.enabled:  # no ledger lines: no field mappings to build
            text = self._text(symbol, trades)
            if text is not None:
                return text, [(None, _NO_FIELDS) for _ in trades]
        push_ms = trades[-1].time_us // 1_000
        emitted = [self._fields(symbol, trade, push_ms) for trade in trades]
        shared = [self.ids.shared(symbol, trade.trade_id) for trade in trades]
        return wire.render_trades(emitted), list(zip(shared, emitted, strict=True))

    def _text(self, symbol: str, trades: list[SimTrade]) -> str | None:
        """The push from the symbol's templates (the text :func:`wire.render_trades` writes)."""
        frame = self._frames.get(symbol, "")
        if frame == "":
            frame = self._frames[symbol] = wire.trades_template(symbol)
            self._objects[symbol] = wire.trade_object_template(symbol)
        item = self._objects[symbol]
        if frame is None or item is None:
            return None
        text = self.ids.text
        objects = ",".join(
            item % (text(symbol, t.trade_id), t.time_us // 1_000, t.price, t.qty,
                    SIDES[t.side], t.trade_id)
            for t in trades
        )  # fmt: skip
        return frame % (trades[-1].time_us // 1_000, objects)

    async def _send(self, symbol: str, trades: list[SimTrade]) -> None:
        key = (PROTOCOL, symbol, trades[0].trade_id, trades[-1].trade_id, len(trades))
        frame, emitted = self.ctx.frames.get(key, lambda: self._render(symbol, trades))
        await self.emit(frame, symbol, emitted, protocol=PROTOCOL)

    # --- timers ---------------------------------------------------------------------------------

    def wakeup_in(self) -> float:
        quiet_since = max(self.last_ping, self.last_traffic)
        return max(0.0, min(1.0, quiet_since + self.settings.idle_s - time.monotonic()))

    async def on_timer(self) -> bool:
        if time.monotonic() - max(self.last_ping, self.last_traffic) >= self.settings.idle_s:
            await self.close(1000, "no ping and no data")
            return False
        return True
