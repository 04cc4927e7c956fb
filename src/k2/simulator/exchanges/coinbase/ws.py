"""Coinbase Advanced Trade's market data WebSocket (``wss://advanced-trade-ws.coinbase.com``),
the exchange side, for the public channels (no ``jwt``).

Nothing is sent on connect; a connection that sends no ``subscribe`` within 5 s is closed. Each
``subscribe``/``unsubscribe`` names one ``channel`` (a message naming several with the older
``channels`` list is refused) and is answered with a ``subscriptions`` message listing every
channel of the connection. ``market_trades`` sends, per product, a ``snapshot`` of its recent
trades and then ``update`` messages, the newest trade first; a ``-USDC`` product is served the
``-USD`` twin's trades under the twin's name. ``heartbeats`` sends a message a second with a
counter. ``level2`` sends each product's book (:mod:`k2.simulator.exchanges.coinbase.books`). Every
message but an error carries ``sequence_num``, counted from 0 per connection
across all channels. Without ``heartbeats``, a channel that sent nothing for 60 s goes quiet:
its subscription ends without a word, as Coinbase warns. An IP address that sends more than 8
messages in a second has the extra ones refused with an error. Unknown products are refused
with an error and nothing of that request is subscribed; the error's shape follows the
Exchange feed's (``{"type":"error","message":"Failed to subscribe","reason":...}``, seen in
ccxt issue 17810), since Coinbase documents none for Advanced Trade. Other public channels are
acknowledged and stay quiet. Messages are rendered by :mod:`k2.exchanges.coinbase.wire`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import structlog

from k2.exchanges.base import FieldValue
from k2.exchanges.coinbase import EXCHANGE, wire
from k2.simulator.book import BookStep
from k2.simulator.exchanges.coinbase import books
from k2.simulator.exchanges.coinbase.rest import alias_of, maker_side
from k2.simulator.exchanges.coinbase.settings import section
from k2.simulator.instruments import Instrument
from k2.simulator.limits import MessageRate
from k2.simulator.market import AggTrade, SimTrade
from k2.simulator.session import BookSubscription, Rendered, Session, Subscription

log = structlog.get_logger("k2.simulator")

PROTOCOL = "coinbase"  # the connection kind fault rules name
LEDGER_PROTOCOL = "coinbase-advanced"
_QUIET_CHANNELS = frozenset({"candles", "status", "ticker", "ticker_batch", "level2_batch"})
_PRIVATE_CHANNELS = frozenset({"user", "futures_balance_summary"})


class IpRates:
    """The message budget of each client IP address, shared by its connections."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._rates: dict[str, MessageRate] = {}

    def allow(self, address: str) -> bool:
        rate = self._rates.get(address)
        if rate is None:
            rate = self._rates[address] = MessageRate(self._limit)
        return rate.allow()


@dataclass(eq=False, kw_only=True)
class _Product(Subscription):
    """One product's trades: ``product_id`` as the market channels name it."""

    product_id: str
    instrument: Instrument


def trade_fields(product_id: str, trade: SimTrade) -> dict[str, FieldValue]:
    """A history trade as ``market_trades`` sends it."""
    return wire.trade_fields(
        trade.trade_id,
        product_id,
        trade.price,
        trade.qty,
        maker_side(trade).upper(),
        wire.format_time(trade.time_us),
    )


def _timestamp() -> str:
    return wire.format_timestamp(time.time_ns())


class CoinbaseSession(Session):
    """One ``wss://advanced-trade-ws.coinbase.com`` connection."""

    protocol = PROTOCOL
    exchange = EXCHANGE

    def __init__(self, *args: Any, rates: IpRates, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = section(self.ctx.config)
        self.rates = rates
        self.products: dict[str, _Product] = {}  # by the market channels' product id
        self.channels: dict[str, list[str]] = {}  # channel → products as asked
        self.sequence = 0
        self.heartbeat_counter = 0
        self.ever_subscribed = False
        self.last_update = self.opened  # the market_trades channel's last message
        self._next_heartbeat: float | None = None
        self.books = books.CoinbaseBooks(self, LEDGER_PROTOCOL, self._next_sequence)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "subscriptions": dict(self.channels)}

    async def _send_message(self, render: Callable[[int, str], str]) -> None:
        """Send an enveloped message: it takes the connection's next ``sequence_num``, unless
        a silent stall keeps it from leaving at all."""
        if self.stall == "silent" or self.ws.closed:
            return
        text = render(self.sequence, _timestamp())
        self.sequence += 1
        await self.send_control(text)

    # --- requests -------------------------------------------------------------------------------

    async def on_text(self, text: str) -> None:
        if not self.rates.allow(str(self.request.remote)):
            await self.send_control(wire.render_error("rate limit exceeded"))
            return
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(message, dict) or kind not in ("subscribe", "unsubscribe"):
            await self.send_control(wire.render_error("Failed to subscribe", "malformed request"))
            return
        channel = message.get("channel")
        if not isinstance(channel, str):
            reason = "one channel per message, named by its channel field"
            await self.send_control(wire.render_error("Failed to subscribe", reason))
            return
        products = message.get("product_ids", [])
        if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
            await self.send_control(wire.render_error("Failed to subscribe", "bad product_ids"))
            return
        await self._channel_request(kind == "subscribe", channel, products)

    async def _channel_request(self, subscribe: bool, channel: str, products: list[str]) -> None:
        if channel in _PRIVATE_CHANNELS:
            await self.send_control(wire.render_error("Failed to subscribe", "authentication"))
            return
        if channel not in {wire.MARKET_TRADES, wire.HEARTBEATS, wire.LEVEL2} | _QUIET_CHANNELS:
            reason = f"{channel} is not a valid channel"
            await self.send_control(wire.render_error("Failed to subscribe", reason))
            return
        unknown = [p for p in products if self._instrument(p) is None]
        if unknown and channel != wire.HEARTBEATS:
            reason = f"{unknown[0]} is not a valid product"
            await self.send_control(wire.render_error("Failed to subscribe", reason))
            return
        if subscribe:
            self.ever_subscribed = True
            if channel == wire.MARKET_TRADES and not self.products:
                self.last_update = time.monotonic()  # the channel's quiet time starts now
            asked = self.channels.setdefault(channel, [])
            asked.extend(p for p in products if p not in asked)
        else:
            self._unsubscribe(channel, products)
        if channel == wire.HEARTBEATS:
            self._next_heartbeat = time.monotonic() if subscribe else None
        subs = {name: list(asked) for name, asked in self.channels.items()}
        await self._send_message(lambda seq, ts: wire.render_subscriptions(subs, seq, ts))
        if subscribe and channel == wire.MARKET_TRADES:
            await self._subscribe_trades(products)
        if subscribe and channel == wire.LEVEL2:
            await self._subscribe_books(products)
        self.nudge()

    def _instrument(self, product_id: str) -> Instrument | None:
        instrument = self.market.instruments.get(alias_of(product_id) or product_id)
        if instrument is None or self.faults.rejects(product_id):
            return None
        return instrument

    def _unsubscribe(self, channel: str, products: list[str]) -> None:
        asked = self.channels.get(channel, [])
        gone = set(products) if products else set(asked)
        self.channels[channel] = [p for p in asked if p not in gone]
        if not self.channels[channel]:
            del self.channels[channel]
        for product_id in gone:
            listed = alias_of(product_id) or product_id
            if channel == wire.LEVEL2:
                self.books.unsubscribe(listed)
            elif channel == wire.MARKET_TRADES:
                entry = self.products.pop(listed, None)
                if entry is not None:
                    entry.active = False

    async def _subscribe_books(self, products: list[str]) -> None:
        """A snapshot of each new product's book, then its updates."""
        for asked in products:
            instrument = self._instrument(asked)
            sub = None if instrument is None else self.books.subscribe(instrument)
            if sub is not None:
                await self.books.send_snapshot(sub)
                sub.active = True

    def _next_sequence(self) -> int:
        """The connection's next ``sequence_num`` (taken)."""
        self.sequence += 1
        return self.sequence - 1

    def book_subscriptions(self) -> Iterable[BookSubscription]:
        return self.books.subs.values()

    async def send_book_steps(self, sub: BookSubscription, steps: list[BookStep]) -> bool:
        assert isinstance(sub, books.CoinbaseBookSubscription)
        return await self.books.send_steps(sub, steps)

    async def _subscribe_trades(self, products: list[str]) -> None:
        """A snapshot of each new product's recent trades, then its updates."""
        for asked in products:
            instrument = self._instrument(asked)
            if instrument is None or instrument.symbol in self.products:
                continue
            history = self.market.histories[instrument.symbol]
            entry = _Product(
                instrument.symbol,
                history.trade_end,
                active=False,
                product_id=instrument.symbol,
                instrument=instrument,
            )
            self.products[instrument.symbol] = entry
            recent = history.recent_visible(self.ctx.config.snapshot_size)
            if recent and self.stall is None:
                room = self.trade_room(len(recent))
                if room:
                    await self._send_trades(entry, recent[-room:], "snapshot")
            entry.active = True

    # --- trades ---------------------------------------------------------------------------------

    def subscriptions(self) -> Iterable[_Product]:
        return self.products.values()

    async def send_new(self, sub: Subscription, items: list[SimTrade] | list[AggTrade]) -> bool:
        assert isinstance(sub, _Product)
        return await self.send_batched(
            cast(list[SimTrade], items), lambda chunk: self._send_trades(sub, chunk, "update")
        )

    async def _send_trades(
        self, entry: _Product, trades: list[SimTrade], kind: wire.EventType
    ) -> None:
        """One ``market_trades`` message of ``trades`` (the newest first on the wire)."""
        product_id = entry.product_id

        def render() -> Rendered:
            emitted = [(t.trade_id, trade_fields(product_id, t)) for t in trades]
            texts = ",".join(wire.render_trade_object(f) for _, f in reversed(emitted))
            return texts, emitted

        first, last = trades[0].trade_id, trades[-1].trade_id
        key = (LEDGER_PROTOCOL, product_id, first, last, len(trades))
        texts, emitted = self.ctx.frames.get(key, render)
        if self.stall == "silent" or self.ws.closed:
            return
        frame = wire.render_market_trades_texts((texts,), kind, self.sequence, _timestamp())
        self.sequence += 1
        self.last_update = time.monotonic()
        await self.emit(
            frame, product_id, emitted, protocol=LEDGER_PROTOCOL, snapshot=kind == "snapshot"
        )

    # --- timers ---------------------------------------------------------------------------------

    def wakeup_in(self) -> float:
        now = time.monotonic()
        moments = [now + 1.0]
        if not self.ever_subscribed:
            moments.append(self.opened + self.settings.subscribe_timeout_s)
        if self._next_heartbeat is not None:
            moments.append(self._next_heartbeat)
        elif self.products:
            moments.append(self.last_update + self.settings.channel_idle_s)
        return max(0.0, min(moments) - now)

    async def on_timer(self) -> bool:
        now = time.monotonic()
        if not self.ever_subscribed and now - self.opened >= self.settings.subscribe_timeout_s:
            await self.close(1000, "no subscribe within the deadline")
            return False
        if self._next_heartbeat is not None and now >= self._next_heartbeat:
            self._next_heartbeat = now + self.ctx.config.heartbeat_s
            self.heartbeat_counter += 1
            counter = self.heartbeat_counter
            current = wire.format_current_time(time.time_ns(), now - self.opened)
            await self._send_message(
                lambda seq, ts: wire.render_heartbeats(seq, ts, current, counter)
            )
        idle = now - self.last_update >= self.settings.channel_idle_s
        if self._next_heartbeat is None and self.products and idle:
            log.info("sim_channel_closed", connection=self.name, channel=wire.MARKET_TRADES)
            self._unsubscribe(wire.MARKET_TRADES, [])
        return True
