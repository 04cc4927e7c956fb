"""OKX v5 WebSocket, the exchange side: ``trades-all`` on ``/ws/v5/business``, ``trades`` on
``/ws/v5/public``.

A ``subscribe``/``unsubscribe`` request is answered per argument with its event (``id`` echoed);
an instrument the market does not list, or a channel this endpoint does not serve, gets event
``error`` code 60018 ("Wrong URL or channel:..."), a request that is not one code 60012, and a
connection past its 480 requests an hour code 60014. ``trades-all`` pushes one trade a frame;
``trades`` one row per taker order and price, with ``count`` and ``seqId``; the public endpoint
also serves ``books`` (:mod:`k2.simulator.exchanges.okx.books`). The text ``ping`` is
answered with ``pong``. A connection with no subscription 30 s after it opened, or no data pushed
for 30 s, is cut, as OKX does. No snapshot follows a subscription. Prices and sizes are printed as
OKX prints them: no trailing zeros.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, cast

from k2.exchanges.base import FieldValue
from k2.exchanges.okx import EXCHANGE, wire
from k2.exchanges.okx.wire import okx_decimal
from k2.simulator.book import BookStep
from k2.simulator.exchanges.okx import books
from k2.simulator.exchanges.okx.settings import section
from k2.simulator.instruments import Instrument
from k2.simulator.market import AggTrade, SimTrade
from k2.simulator.session import BookSubscription, Rendered, Session, Subscription, text_frame

_BATCH = 256  # frames written to the socket at once
_HOUR_S = 3600.0


@dataclass(eq=False, kw_only=True)
class _Channel(Subscription):
    """One subscribed argument: ``channel`` of ``instrument``."""

    channel: str
    instrument: Instrument


class OkxSession(Session):
    """One OKX connection; a subclass names its endpoint's channel."""

    exchange = EXCHANGE
    channel: ClassVar[str]
    book_channels: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = section(self.ctx.config)
        self.conn_id = f"{self.ctx.exchange_connection_id() & 0xFFFFFFFF:08x}"
        self.subs: dict[str, _Channel] = {}
        self.ever_subscribed = False
        self._requests: deque[float] = deque()
        self._numbers: dict[str, str] = {}
        self._templates: dict[str, str | None] = {}
        self.books = books.OkxPublicBooks(self, self.protocol)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "subscriptions": sorted(self.subs), "conn_id": self.conn_id}

    async def say(self, text: str) -> None:
        """Send an event (or ``pong``): data pushed, as far as the idle cut is concerned."""
        await self.send_control(text)
        if self.stall != "silent":
            self.last_traffic = time.monotonic()

    # --- requests -------------------------------------------------------------------------------

    async def on_text(self, text: str) -> None:
        if text == wire.PING:
            await self.say(wire.PONG)
            return
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        op = message.get("op") if isinstance(message, dict) else None
        if not isinstance(message, dict) or op not in ("subscribe", "unsubscribe"):
            await self.say(wire.render_error(wire.INVALID_REQUEST, f"Invalid request: {text}",
                                             self.conn_id))  # fmt: skip
            return
        request_id = message.get("id")
        rid = request_id if isinstance(request_id, str) else None
        args = message.get("args")
        if not isinstance(args, list) or not args:
            msg = f"Invalid request: {text}"
            await self.say(wire.render_error(wire.INVALID_REQUEST, msg, self.conn_id, rid))
            return
        if not self._count_request():
            msg = "Requests too frequent."
            await self.say(wire.render_error(wire.TOO_MANY_REQUESTS, msg, self.conn_id, rid))
            return
        for item in args:
            await self._argument(str(op), item, rid)
        self.nudge()

    def _count_request(self) -> bool:
        """One subscribe/unsubscribe request against the hourly limit; False over it."""
        now = time.monotonic()
        while self._requests and now - self._requests[0] >= _HOUR_S:
            self._requests.popleft()
        if len(self._requests) >= self.settings.requests_per_hour:
            return False
        self._requests.append(now)
        return True

    async def _argument(self, op: str, item: object, rid: str | None) -> None:
        channel = item.get("channel") if isinstance(item, dict) else None
        inst_id = item.get("instId") if isinstance(item, dict) else None
        if not isinstance(channel, str) or not isinstance(inst_id, str):
            msg = f"Invalid request: {json.dumps(item)}"
            await self.say(wire.render_error(wire.INVALID_REQUEST, msg, self.conn_id, rid))
            return
        instrument = self.market.instruments.get(inst_id)
        refused = instrument is None or inst_id in self.market.delisted
        served = channel == self.channel or channel in self.book_channels
        if not served or refused or self.faults.rejects(inst_id):
            msg = wire.unknown_instrument_message(channel, inst_id)
            await self.say(wire.render_error(wire.UNKNOWN_INSTRUMENT, msg, self.conn_id, rid))
            return
        assert instrument is not None
        if channel in self.book_channels:
            await self._book_argument(op, instrument, rid)
            return
        if op == "subscribe":
            if inst_id not in self.subs:
                history = self.market.histories[inst_id]
                aggregates = self.channel == wire.TRADES
                cursor = history.agg_end if aggregates else history.trade_end
                self.subs[inst_id] = _Channel(
                    inst_id, cursor, aggregates, channel=channel, instrument=instrument
                )
            self.ever_subscribed = True
        else:
            removed = self.subs.pop(inst_id, None)
            if removed is not None:
                removed.active = False
        await self.say(wire.render_event(op, channel, inst_id, self.conn_id, rid))

    async def _book_argument(self, op: str, instrument: Instrument, rid: str | None) -> None:
        if op == "unsubscribe":
            self.books.unsubscribe(instrument.symbol)
            await self.say(wire.render_event(op, wire.BOOKS, instrument.symbol, self.conn_id, rid))
            return
        self.ever_subscribed = True
        sub = self.books.subscribe(instrument)
        await self.say(wire.render_event(op, wire.BOOKS, instrument.symbol, self.conn_id, rid))
        if sub is not None:
            await self.books.send_snapshot(sub)
            sub.active = True

    def book_subscriptions(self) -> Iterable[BookSubscription]:
        return self.books.subs.values()

    async def send_book_steps(self, sub: BookSubscription, steps: list[BookStep]) -> bool:
        assert isinstance(sub, books.OkxBookSubscription)
        return await self.books.send_steps(sub, steps)

    # --- trades ---------------------------------------------------------------------------------

    def subscriptions(self) -> Iterable[_Channel]:
        return self.subs.values()

    def _number(self, text: str) -> str:
        found = self._numbers.get(text)
        if found is None:
            if len(self._numbers) > 100_000:
                self._numbers.clear()
            found = self._numbers[text] = okx_decimal(text)
        return found

    def fields_of(self, inst_id: str, item: SimTrade | AggTrade) -> dict[str, FieldValue]:
        """The row OKX pushes for a history item (``trades-all``: a trade; ``trades``: an
        aggregate of one taker order at one price)."""
        number = self._number
        if isinstance(item, SimTrade):
            return wire.trade_fields(inst_id, item.trade_id, number(item.price),
                                     number(item.qty), item.side, item.time_us // 1000)  # fmt: skip
        return {
            "instId": inst_id, "tradeId": str(item.last_id), "px": number(item.price),
            "sz": number(item.qty), "side": item.side, "ts": str(item.time_us // 1000),
            "count": str(item.last_id - item.first_id + 1), "source": "0", "seqId": item.agg_id,
        }  # fmt: skip

    def _render(self, inst_id: str, item: SimTrade | AggTrade) -> Rendered:
        fields = self.fields_of(inst_id, item)
        key = item.trade_id if isinstance(item, SimTrade) else item.last_id
        return wire.render_trades(self.channel, inst_id, [fields]), [(key, fields)]

    async def send_new(self, sub: Subscription, items: list[SimTrade] | list[AggTrade]) -> bool:
        channel = cast(_Channel, sub)
        inst_id = channel.instrument.symbol
        plain = not self.faults.active and not self.ctx.ledger.enabled
        if plain and self.channel == wire.ALL_TRADES:
            template = self._templates.get(inst_id)
            if inst_id not in self._templates:
                template = self._templates[inst_id] = wire.trade_template(self.channel, inst_id)
            if template is not None:
                return await self._send_plain(template, cast(list[SimTrade], items))
        frames = self.ctx.frames
        batch: list[bytes] = []
        for item in items:
            if item.lost:
                continue
            if self.trade_room(1) == 0 or self.dropped or self.stall is not None:
                break
            key = (self.protocol, inst_id, item[0])
            frame, emitted = frames.get(key, partial(self._render, inst_id, item))
            batch += self.prepare(frame, inst_id, emitted, protocol=self.protocol)
            if len(batch) >= _BATCH:
                await self.write(batch)
                batch = []
                await asyncio.sleep(0)  # let the clock and other connections run
        if batch:
            await self.write(batch)
        return not self.dropped and self.stall is None

    async def _send_plain(self, template: str, trades: list[SimTrade]) -> bool:
        """``trades-all`` frames of a connection with no faults and no ledger, each formatted
        from a template (the text :func:`wire.render_trades` writes), written in batches."""
        number, faults = self._number, self.faults
        sent = [trade for trade in trades if not trade.lost]
        for start in range(0, len(sent), _BATCH):
            batch = [
                text_frame(template % (tid, number(price), number(qty), side, "0", at // 1000))
                for tid, price, qty, at, side, _, _, _ in sent[start : start + _BATCH]
            ]
            faults.trade_frames += len(batch)
            faults.trades_sent += len(batch)
            await self.write(batch)
            if self.dropped or self.faults.active:
                break
            await asyncio.sleep(0)  # let the clock and other connections run
        return not self.dropped and self.stall is None

    # --- timers ---------------------------------------------------------------------------------

    def wakeup_in(self) -> float:
        since = self.last_traffic if self.ever_subscribed else self.opened
        return max(0.0, min(1.0, since + self.settings.idle_s - time.monotonic()))

    async def on_timer(self) -> bool:
        """OKX cuts a connection with no subscription, or no data pushed, for 30 s."""
        now = time.monotonic()
        if not self.ever_subscribed and now - self.opened >= self.settings.idle_s:
            self.drop("no_subscription")
            return False
        if self.ever_subscribed and now - self.last_traffic >= self.settings.idle_s:
            self.drop("idle")
            return False
        return True


class OkxBusinessSession(OkxSession):
    """``/ws/v5/business``: ``trades-all``, one trade a push."""

    protocol = "okx-business"
    channel = wire.ALL_TRADES


class OkxPublicSession(OkxSession):
    """``/ws/v5/public``: ``trades``, one row per taker order and price."""

    protocol = "okx-public"
    channel = wire.TRADES
    book_channels = frozenset({wire.BOOKS})
