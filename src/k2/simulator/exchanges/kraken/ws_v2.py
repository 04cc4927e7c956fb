"""Kraken WebSocket v2 (``wss://ws.kraken.com/v2``), the exchange side, public ``trade`` channel.

On connect a ``status`` update with a u64 ``connection_id``; each requested symbol gets its own
ack carrying ``time_in``/``time_out``; with ``snapshot`` (true unless the request says false, as
the captured acks show) the last 50 trades follow as ``"type":"snapshot"``, then ``update``
frames. Symbols are v2 names (``BTC/USD``, ``DOGE/USD``): the v1/REST names ``XBT/...`` and
``XDG/...`` are refused with ``Currency pair not supported <SYMBOL>``, as the exchange does. Prices
and sizes are bare JSON numbers with the engine's precision. ``{"channel":"heartbeat"}`` comes
about once a second without other updates once anything is subscribed; a ``subscribe`` to the
``heartbeat`` channel is acknowledged harmlessly (the exchange's docs disagree on whether it is
needed). ``ping`` is answered with ``pong`` and ``time_in``/``time_out``. More than
``kraken_msg_rate`` messages in a second get ``Exceeded msg rate``, as in v1.

Frames are rendered by :mod:`k2.exchanges.kraken.wire`; the two shapes that module has no renderer
for (the ack of a non-trade channel, and an error to a request without a ``method``) are built
here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from k2.exchanges.base import FieldValue
from k2.exchanges.kraken import EXCHANGE, wire
from k2.simulator.book import BookStep
from k2.simulator.exchange import now_us
from k2.simulator.exchanges.kraken import books
from k2.simulator.exchanges.kraken.instruments import as_kraken
from k2.simulator.exchanges.kraken.settings import section
from k2.simulator.exchanges.kraken.ws_v1 import EXCEEDED_MSG_RATE
from k2.simulator.instruments import Instrument
from k2.simulator.limits import MessageRate
from k2.simulator.market import AggTrade, SimTrade
from k2.simulator.session import BookSubscription, Rendered, Session, Subscription

PROTOCOL = "kraken-v2"
_NO_FIELDS: dict[str, FieldValue] = {}  # trades of a frame rendered without a ledger
SYSTEM_VERSION = "2.0.10"
_PASSIVE_CHANNELS = frozenset({"heartbeat", "status"})


@dataclass(eq=False, kw_only=True)
class _Symbol(Subscription):
    """One symbol's subscription: ``symbol`` as v2 spells it, ``listed`` as the market does."""

    symbol: str
    instrument: Instrument


def v2_decimal(text: str, keep: int) -> str:
    """Engine precision: ``text`` with trailing zeros cut, keeping at least ``keep`` decimals."""
    whole, dot, frac = text.partition(".")
    if not dot:
        return text
    frac = frac.rstrip("0")
    frac = frac + "0" * max(0, keep - len(frac))
    return f"{whole}.{frac}" if frac else whole


class TimestampCache:
    """:func:`wire.format_timestamp_v2` with the date part formatted once per second.

    The exchange's format is fixed-width (``...:SS.ffffffZ``), so the text of any microsecond of a
    second is the text of that second with its six fraction digits replaced.
    """

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def prefix(self, second: int) -> str:
        """The text of ``second`` (since the epoch) up to its fraction digits."""
        if second != self._second:
            whole = wire.format_timestamp_v2(second * 1_000_000)
            self._second, self._prefix = second, whole[: -len("000000Z")]
        return self._prefix

    def format(self, micros: int) -> str:
        second, fraction = divmod(micros, 1_000_000)
        return f"{self.prefix(second)}{fraction:06d}Z"


class TradeFrameWriter:
    """v2 trade frames straight from the history's trades, for connections without a ledger:
    the text :func:`wire.render_v2_trades` makes of the trades' fields, at a fraction of its
    cost (a template per symbol, engine-precision numbers remembered)."""

    def __init__(self) -> None:
        self._clock = TimestampCache()
        self._templates: dict[str, str] = {}
        self._numbers: dict[int, dict[str, str]] = {}  # kept decimals → decimal → text

    def frame(
        self, symbol: str, instrument: Instrument, trades: list[SimTrade], kind: wire.V2TradeType
    ) -> str:
        template = self._templates.get(symbol)
        if template is None:
            template = self._templates[symbol] = wire.v2_trade_template(symbol)
        prices = self._numbers_of(instrument.price_decimals)
        sizes = self._numbers_of(1)
        prefix, second, objects, clock = "", -1, [], self._clock.prefix
        for trade_id, price, qty, time_us, side, ord_type, _, _ in trades:
            if time_us // 1_000_000 != second:
                second = time_us // 1_000_000
                prefix = clock(second)
            price_text = prices.get(price) or self._number(prices, price, instrument.price_decimals)
            qty_text = sizes.get(qty) or self._number(sizes, qty, 1)
            values = (side, price_text, qty_text, ord_type, trade_id, prefix, time_us % 1_000_000)
            objects.append(template % values)
        return wire.render_v2_trade_texts(objects, kind)

    def _numbers_of(self, keep: int) -> dict[str, str]:
        found = self._numbers.get(keep)
        if found is None or len(found) > 100_000:
            found = self._numbers[keep] = {}
        return found

    @staticmethod
    def _number(numbers: dict[str, str], value: str, keep: int) -> str:
        found = numbers[value] = v2_decimal(value, keep)
        return found


def v2_fields(
    symbol: str, instrument: Instrument, trade: SimTrade, clock: TimestampCache
) -> dict[str, FieldValue]:
    """The v2 field mapping of a history trade (decimal text for the JSON numbers)."""
    return wire.v2_trade_fields(
        symbol,
        trade.side,
        v2_decimal(trade.price, instrument.price_decimals),
        v2_decimal(trade.qty, 1),
        trade.ord_type,
        trade.trade_id,
        clock.format(trade.time_us),
    )


def render_channel_ack(channel: str, req_id: int | None, time_in: str, time_out: str) -> str:
    """Ack of a subscribe to a channel without symbols (``heartbeat``, ``status``)."""
    message: dict[str, Any] = {
        "method": "subscribe",
        "result": {"channel": channel},
        "success": True,
        "time_in": time_in,
        "time_out": time_out,
    }
    if req_id is not None:
        message["req_id"] = req_id
    return json.dumps(message, separators=(",", ":"), sort_keys=True)


def render_request_error(error: str, time_in: str, time_out: str) -> str:
    """Error to a frame that is not a request at all (bad JSON, no ``method``)."""
    message = {"error": error, "success": False, "time_in": time_in, "time_out": time_out}
    return json.dumps(message, separators=(",", ":"), sort_keys=True)


def _stamp() -> str:
    return wire.format_timestamp_v2(now_us())


class KrakenV2Session(Session):
    """One ``wss://ws.kraken.com/v2`` connection."""

    protocol = PROTOCOL
    exchange = EXCHANGE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.symbols: dict[str, _Symbol] = {}
        self.channels: set[str] = set()
        self.ever_subscribed = False
        self.connection_id = self.ctx.exchange_connection_id()
        self._clock = TimestampCache()
        self.by_v2 = self._v2_names()
        self.settings = section(self.ctx.config)
        self.rate = MessageRate(self.settings.msg_rate)
        self._writer = TradeFrameWriter()
        self.books = books.KrakenV2Books(self, PROTOCOL)

    def _v2_names(self) -> dict[str, Instrument]:
        return {as_kraken(inst).v2_symbol: inst for inst in self.market.instruments.values()}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "subscriptions": sorted(self.symbols)}

    async def on_open(self) -> None:
        await self.send_control(wire.render_v2_status(self.connection_id, "online", SYSTEM_VERSION))

    async def on_text(self, text: str) -> None:
        time_in = _stamp()
        if not self.rate.allow():
            await self.send_control(render_request_error(EXCEEDED_MSG_RATE, time_in, _stamp()))
            return
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            await self.send_control(render_request_error("Malformed request", time_in, _stamp()))
            return
        req_id = message.get("req_id")
        req_id = req_id if isinstance(req_id, int) and not isinstance(req_id, bool) else None
        method = message["method"]
        params = message.get("params")
        if method == "ping":
            await self.send_control(wire.render_v2_pong(req_id, time_in, _stamp()))
        elif method in ("subscribe", "unsubscribe") and isinstance(params, dict):
            await self._channel_request(method, params, req_id, time_in)
            self.nudge()
        else:
            error = (
                "Method not found"
                if method not in ("subscribe", "unsubscribe")
                else ("Malformed request")
            )
            await self.send_control(
                wire.render_v2_method_error(method, error, req_id, time_in, _stamp())
            )

    async def _channel_request(
        self, method: str, params: dict[str, Any], req_id: int | None, time_in: str
    ) -> None:
        channel = params.get("channel")
        if channel in _PASSIVE_CHANNELS and method == "subscribe":
            self.channels.add(str(channel))
            self.ever_subscribed = True
            await self.send_control(render_channel_ack(str(channel), req_id, time_in, _stamp()))
            return
        symbols = params.get("symbol")
        if channel not in ("trade", books.CHANNEL) or not isinstance(symbols, list):
            error = "Channel not supported" if channel != "trade" else "Malformed request"
            await self.send_control(
                wire.render_v2_method_error(method, error, req_id, time_in, _stamp())
            )
            return
        snapshot = params.get("snapshot", True) is not False
        if channel == books.CHANNEL:
            await self._book_request(method, params, symbols, snapshot, req_id, time_in)
            return
        for symbol in symbols:
            if method == "subscribe":
                await self._subscribe(symbol, snapshot, req_id, time_in)
            else:
                await self._unsubscribe(symbol, req_id, time_in)

    async def _book_request(
        self,
        method: str,
        params: dict[str, Any],
        symbols: list[Any],
        snapshot: bool,
        req_id: int | None,
        time_in: str,
    ) -> None:
        depth = params.get("depth", books.DEFAULT_DEPTH)
        problem = books.depth_error(depth) if method == "subscribe" else None
        for symbol in symbols:
            if method == "unsubscribe":
                if self.books.unsubscribe(str(symbol)) is None:
                    await self.send_control(
                        wire.render_v2_method_error(
                            method,
                            "Subscription Not Found",
                            req_id,
                            time_in,
                            _stamp(),
                            symbol=str(symbol),
                        )
                    )
                else:
                    await self.send_control(
                        wire.render_v2_unsubscribe_ack(
                            str(symbol), req_id, time_in, _stamp(), channel=books.CHANNEL
                        )
                    )
                continue
            refused = problem or self._symbol_error(symbol, self.books.subs)
            if refused is not None or not isinstance(symbol, str):
                await self.send_control(
                    wire.render_v2_method_error(
                        method, str(refused), req_id, time_in, _stamp(), symbol=str(symbol)
                    )
                )
                continue
            assert isinstance(depth, int)
            self.books.subscribe(symbol, self.by_v2[symbol], depth)
            self.ever_subscribed = True
            ack = wire.render_v2_subscribe_ack(
                symbol, snapshot, req_id, time_in, _stamp(), channel=books.CHANNEL, depth=depth
            )
            await self.send_control(ack)
            sub = self.books.subs[symbol]
            if snapshot:
                await self.books.send_snapshot(sub)
            sub.active = True

    def _symbol_error(
        self, symbol: object, taken: Mapping[str, object] | None = None
    ) -> str | None:
        if isinstance(symbol, str) and symbol not in self.by_v2:  # listed since the connect?
            self.by_v2 = self._v2_names()
        if not isinstance(symbol, str) or symbol not in self.by_v2 or self.faults.rejects(symbol):
            return f"Currency pair not supported {symbol}"
        if symbol in (self.symbols if taken is None else taken):
            return "Already subscribed"
        return None

    async def _subscribe(
        self, symbol: object, snapshot: bool, req_id: int | None, t_in: str
    ) -> None:
        problem = self._symbol_error(symbol)
        if problem is not None or not isinstance(symbol, str):
            await self.send_control(
                wire.render_v2_method_error(
                    "subscribe", str(problem), req_id, t_in, _stamp(), symbol=str(symbol)
                )
            )
            return
        instrument = self.by_v2[symbol]
        history = self.market.histories[instrument.symbol]
        recent = history.recent_visible(self.ctx.config.snapshot_size) if snapshot else []
        entry = _Symbol(
            instrument.symbol, history.trade_end, active=False, symbol=symbol, instrument=instrument
        )
        self.symbols[symbol] = entry
        self.ever_subscribed = True
        await self.send_control(
            wire.render_v2_subscribe_ack(symbol, snapshot, req_id, t_in, _stamp())
        )
        if recent and self.stall is None:
            room = self.trade_room(len(recent))
            if room:
                await self._send(entry, recent[-room:], "snapshot")
        entry.active = True

    async def _unsubscribe(self, symbol: object, req_id: int | None, t_in: str) -> None:
        entry = self.symbols.pop(symbol, None) if isinstance(symbol, str) else None
        if entry is None:
            await self.send_control(
                wire.render_v2_method_error(
                    "unsubscribe",
                    "Subscription Not Found",
                    req_id,
                    t_in,
                    _stamp(),
                    symbol=str(symbol),
                )
            )
            return
        await self.send_control(
            wire.render_v2_unsubscribe_ack(entry.symbol, req_id, t_in, _stamp())
        )

    async def _send(self, entry: _Symbol, trades: list[SimTrade], kind: wire.V2TradeType) -> None:
        def render() -> Rendered:
            if not self.ctx.ledger.enabled:  # no ledger lines: no field mappings to build
                text = self._writer.frame(entry.symbol, entry.instrument, trades, kind)
                return text, [(t.trade_id, _NO_FIELDS) for t in trades]
            emitted = [
                (trade.trade_id, v2_fields(entry.symbol, entry.instrument, trade, self._clock))
                for trade in trades
            ]
            return wire.render_v2_trades([f for _, f in emitted], kind), emitted

        key = (PROTOCOL, entry.symbol, kind, trades[0].trade_id, trades[-1].trade_id, len(trades))
        frame, emitted = self.ctx.frames.get(key, render)
        await self.emit(
            frame, entry.symbol, emitted, protocol=PROTOCOL, snapshot=kind == "snapshot"
        )

    def subscriptions(self) -> Iterable[_Symbol]:
        return self.symbols.values()

    def book_subscriptions(self) -> Iterable[BookSubscription]:
        return self.books.subs.values()

    async def send_book_steps(self, sub: BookSubscription, steps: list[BookStep]) -> bool:
        assert isinstance(sub, books.KrakenBookSubscription)
        return await self.books.send_steps(sub, steps)

    async def send_new(self, sub: Subscription, items: list[SimTrade] | list[AggTrade]) -> bool:
        assert isinstance(sub, _Symbol)
        return await self.send_batched(
            cast(list[SimTrade], items), lambda chunk: self._send(sub, chunk, "update")
        )

    def wakeup_in(self) -> float:
        if not (self.symbols or self.channels or self.books.subs):
            return 1.0
        return max(0.0, self.last_traffic + self.ctx.config.heartbeat_s - time.monotonic())

    async def on_timer(self) -> bool:
        now = time.monotonic()
        config = self.ctx.config
        subscribed = bool(self.symbols or self.channels or self.books.subs)
        if not self.ever_subscribed and now - self.opened >= self.settings.idle_s:
            await self.close(1000, "no subscription")
            return False
        if subscribed and now - self.last_traffic >= config.heartbeat_s:
            self.last_traffic = now
            await self.send_control(wire.render_v2_heartbeat())
        return True
