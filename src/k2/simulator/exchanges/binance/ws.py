"""Binance spot market streams (``wss://stream.binance.com:9443``), the exchange side.

Raw streams at ``/ws/<stream>`` (several joined by ``/``) send bare payloads; ``/ws`` and
``/ws/<any name that is no stream>`` open a bare connection that subscribes with ``SUBSCRIBE``;
combined streams at ``/stream?streams=a/b`` wrap them ``{"stream":...,"data":...}``;
``timeUnit=MICROSECOND`` (or ``MILLISECOND``, either case) sets the unit of ``E``/``T``. Live
requests ``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY``/``GET_PROPERTY
combined`` are answered as documented: a well-formed stream of a symbol the exchange does not list
is accepted (``result:null``) and never sends anything; a malformed stream name gets
``{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":N}``. Only ``@trade`` and
``@aggTrade`` carry trades here; other well-formed streams (kline...) are accepted and stay
quiet. Each trade is one frame, ``"M":true`` kept. ``@depth`` and ``@depth@100ms`` send the
symbol's diff depth events (:mod:`k2.simulator.exchanges.binance.books`).

Keep-alive and limits as the exchange enforces them: a ping frame every 20 s and a disconnect when
no pong answers it within 60 s (unsolicited pongs do not count); more than 5 incoming control
messages (text requests, pings, pongs) in a second disconnects; at most 1024 streams; the
connection ends at its maximum age (24 h on the exchange, shortened by configuration); a
``serverShutdown`` event on demand or after ``shutdown_after_s``, then disconnection. Frames are
rendered by :mod:`k2.exchanges.binance.wire`."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from k2.errors import K2Error
from k2.exchanges.binance import EXCHANGE, wire
from k2.simulator.book import BookStep
from k2.simulator.exchange import now_us
from k2.simulator.exchanges.binance import books
from k2.simulator.exchanges.binance.settings import section
from k2.simulator.instruments import Instrument
from k2.simulator.market import AggTrade, SimTrade
from k2.simulator.session import BookSubscription, Rendered, Session, Subscription, text_frame

PROTOCOL = "binance"
_STREAM = re.compile(r"[a-z0-9]+@[A-Za-z0-9_@]+|![A-Za-z0-9_@]+")
_TIME_UNITS = {"MICROSECOND": True, "microsecond": True, "MILLISECOND": False, "millisecond": False}
_METHODS = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"
_ID = re.compile(r"[A-Za-z0-9]{1,36}")
INVALID_STREAM = "Invalid request: invalid stream"
_BATCH = 256  # frames written to the socket at once
_TRUE, _FALSE = "true", "false"  # JSON booleans


class BadConnectRequestError(K2Error):
    """Raised when a connect URL names malformed streams or an unknown time unit (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """What the connect URL asked for."""

    streams: tuple[str, ...]
    combined: bool
    micros: bool


def connect_request(raw_streams: str, combined: bool, query: Mapping[str, str]) -> ConnectRequest:
    """Parse ``/ws/<a>/<b>`` or ``/stream?streams=a/b`` plus ``timeUnit``."""
    unit = query.get("timeUnit", "MILLISECOND")
    if unit not in _TIME_UNITS:
        raise BadConnectRequestError(f"Invalid timeUnit {unit}")
    streams = tuple(name for name in raw_streams.split("/") if name)
    if not combined and len(streams) == 1 and not _STREAM.fullmatch(streams[0]):
        streams = ()  # /ws/<any name>: a bare connection that subscribes later, as clients do
    if any(not _STREAM.fullmatch(name) for name in streams):
        raise BadConnectRequestError(INVALID_STREAM)
    return ConnectRequest(streams, combined, _TIME_UNITS[unit])


@dataclass(eq=False, kw_only=True)
class _Stream(Subscription):
    """One stream: ``kind`` is "trade", "aggTrade", or None for a stream without data here (of
    a symbol the exchange does not list, or not a trade stream), which has no instrument."""

    name: str
    kind: str | None
    instrument: Instrument | None


def _valid_id(value: object) -> bool:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value is None or -(2**63) <= value < 2**63
    return isinstance(value, str) and bool(_ID.fullmatch(value))


class BinanceSession(Session):
    """One Binance market-stream connection."""

    protocol = PROTOCOL
    exchange = EXCHANGE

    def __init__(self, *args: Any, connect: ConnectRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.combined = connect.combined
        self.micros = connect.micros
        self.streams: dict[str, _Stream] = {}
        self._controls: deque[float] = deque()
        config = self.ctx.config
        self.settings = section(config)
        self._next_ping = self.opened + self.settings.ping_s
        self._pings: dict[bytes, float] = {}  # unanswered ping payload -> when it was sent
        self._grace = config.shutdown_grace_s
        self._shutdown_at = (
            None if config.shutdown_after_s is None else self.opened + config.shutdown_after_s
        )
        self._close_at: float | None = None
        self._templates: dict[tuple[str, str | None], str | None] = {}
        self.depths = books.BinanceDepths(self, PROTOCOL)
        self._add(connect.streams)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "subscriptions": list(self.streams),
            "combined": self.combined,
        }

    def _add(self, names: tuple[str, ...] | list[str]) -> None:
        for name in names:
            if name in self.streams:
                continue
            symbol, _, kind = name.partition("@")
            instrument = self.market.instruments.get(symbol.upper())
            history = self.market.histories.get(symbol.upper())
            quiet = instrument is None or history is None or self.faults.rejects(symbol.upper())
            if not quiet and kind in books.DEPTH_KINDS:
                assert instrument is not None
                self.depths.add(name, kind, instrument)
            if quiet or kind not in ("trade", "aggTrade"):
                self.streams[name] = _Stream("", 0, name=name, kind=None, instrument=None)
                continue
            assert instrument is not None and history is not None
            aggregates = kind == "aggTrade"
            cursor = history.agg_end if aggregates else history.trade_end
            self.streams[name] = _Stream(
                instrument.symbol,
                cursor,
                aggregates=aggregates,
                name=name,
                kind=kind,
                instrument=instrument,
            )

    # --- requests -------------------------------------------------------------------------------

    async def on_text(self, text: str) -> None:
        if not self._count_control():
            return
        try:
            message = json.loads(text)
        except ValueError:
            await self.send_control(
                wire.render_error(3, "Invalid JSON: expected value at line 1 column 1", None)
            )
            return
        if not isinstance(message, dict) or "method" not in message:
            await self.send_control(
                wire.render_error(2, "Invalid request: missing field `method`", None)
            )
            return
        request_id = message.get("id")
        if not _valid_id(request_id):
            await self.send_control(
                wire.render_error(
                    2, "Invalid request: request ID must be an unsigned integer", None
                )
            )
            return
        await self._request(message["method"], message.get("params"), request_id)

    async def _request(self, method: object, params: object, request_id: Any) -> None:
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            await self._change(method == "SUBSCRIBE", params, request_id)
        elif method == "LIST_SUBSCRIPTIONS":
            await self.send_control(wire.render_result(request_id, list(self.streams)))
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            await self._property(method == "SET_PROPERTY", params, request_id)
        else:
            msg = f"Invalid request: unknown variant `{method}`, expected one of {_METHODS}"
            await self.send_control(wire.render_error(2, msg, request_id))

    async def _change(self, subscribe: bool, params: object, request_id: Any) -> None:
        names = params if isinstance(params, list) else None
        if names is None or not all(isinstance(n, str) and _STREAM.fullmatch(n) for n in names):
            await self.send_control(wire.render_error(2, INVALID_STREAM, request_id))
            return
        if subscribe:
            if len(set(self.streams) | set(names)) > self.settings.max_streams:
                msg = "Invalid request: too many parameters"
                await self.send_control(wire.render_error(2, msg, request_id))
                return
            self._add(names)
            self.nudge()
        else:
            for name in names:
                self.depths.unsubscribe(name)
                removed = self.streams.pop(name, None)
                if removed is not None:
                    removed.active = False
        await self.send_control(wire.render_result(request_id))

    async def _property(self, setting: bool, params: object, request_id: Any) -> None:
        values = params if isinstance(params, list) else []
        if not values or values[0] != "combined":
            await self.send_control(wire.render_error(0, "Unknown property", request_id))
            return
        if not setting:
            answer = {"result": self.combined, "id": request_id}
            await self.send_control(json.dumps(answer, separators=(",", ":")))
            return
        if len(values) != 2 or not isinstance(values[1], bool):
            await self.send_control(
                wire.render_error(1, "Invalid value type: expected Boolean", request_id)
            )
            return
        self.combined = values[1]
        await self.send_control(wire.render_result(request_id))

    def _count_control(self) -> bool:
        """Count one incoming control message; over the limit the exchange disconnects."""
        now = time.monotonic()
        self._controls.append(now)
        while self._controls and now - self._controls[0] >= 1.0:
            self._controls.popleft()
        if len(self._controls) > self.settings.control_rate:
            self.drop("control_rate_exceeded")
            return False
        return True

    async def on_ping(self, payload: bytes) -> None:
        if self._count_control():
            await super().on_ping(payload)

    def on_pong(self, payload: bytes) -> None:
        """A pong answers its ping and every earlier one; unsolicited pongs change nothing."""
        payload = bytes(payload)
        if self._count_control() and payload in self._pings:
            sent = self._pings[payload]
            self._pings = {key: when for key, when in self._pings.items() if when > sent}

    # --- trades ---------------------------------------------------------------------------------

    def _time(self, micros: int) -> int:
        return micros if self.micros else micros // 1_000

    def _render(self, symbol: str, item: SimTrade | AggTrade, wrap: str | None) -> Rendered:
        """One payload; ``E`` is the trade time, as the exchange pushes a trade when it happens."""
        when = self._time(item.time_us)
        if isinstance(item, SimTrade):
            fields = wire.trade_fields(
                symbol, item.trade_id, item.price, item.qty, when, item.side == "sell"
            )
            return wire.render_trade(fields, wrap), [(item.trade_id, fields)]
        fields = wire.agg_trade_fields(
            symbol,
            item.agg_id,
            item.price,
            item.qty,
            item.first_id,
            item.last_id,
            when,
            item.side == "sell",
        )
        return wire.render_agg_trade(fields, wrap), [(item.agg_id, fields)]

    def book_subscriptions(self) -> Iterable[BookSubscription]:
        return self.depths.subs.values()

    async def send_book_steps(self, sub: BookSubscription, steps: list[BookStep]) -> bool:
        assert isinstance(sub, books.DepthStream)
        return await self.depths.send_steps(sub, steps, self._time(now_us()), self.combined)

    def subscriptions(self) -> Iterable[_Stream]:
        return [stream for stream in self.streams.values() if stream.instrument is not None]

    async def send_new(self, sub: Subscription, items: list[SimTrade] | list[AggTrade]) -> bool:
        assert isinstance(sub, _Stream)
        return await self._send_items(sub, items)

    async def _send_items(self, stream: _Stream, items: list[SimTrade] | list[AggTrade]) -> bool:
        """One frame per trade, written in batches; False when sending must stop."""
        assert stream.instrument is not None
        symbol = stream.instrument.symbol
        wrap = stream.name if self.combined else None
        protocol = "binance-trade" if stream.kind == "trade" else "binance-aggtrade"
        if stream.kind == "trade" and not self.faults.active and not self.ctx.ledger.enabled:
            template = self._templates.get((symbol, wrap))
            if template is None:
                template = self._templates[(symbol, wrap)] = wire.trade_template(symbol, wrap)
            if template is not None:
                return await self._send_plain(template, cast(list[SimTrade], items))
        frames = self.ctx.frames
        batch: list[bytes] = []
        for item in items:
            if item.lost:
                continue
            if self.trade_room(1) == 0 or self.dropped or self.stall is not None:
                break
            key = (protocol, symbol, item[0], wrap, self.micros)
            frame, emitted = frames.get(key, partial(self._render, symbol, item, wrap))
            batch += self.prepare(frame, symbol, emitted, protocol=protocol)
            if len(batch) >= _BATCH:
                await self.write(batch)
                batch = []
                await asyncio.sleep(0)  # let the clock and other connections run
        if batch:
            await self.write(batch)
        return not self.dropped and self.stall is None

    async def _send_plain(self, template: str, trades: list[SimTrade]) -> bool:
        """``@trade`` frames of a connection with no faults and no ledger: each one formatted
        from a template (the text :func:`wire.render_trade` writes), written in batches."""
        micros, faults = self.micros, self.faults
        sent = [trade for trade in trades if not trade.lost]
        for start in range(0, len(sent), _BATCH):
            batch = []
            for trade_id, price, qty, time_us, side, _, _, _ in sent[start : start + _BATCH]:
                when = time_us if micros else time_us // 1_000
                maker = _TRUE if side == "sell" else _FALSE
                batch.append(
                    text_frame(template % (when, trade_id, price, qty, when, maker, _TRUE))
                )
            faults.trade_frames += len(batch)
            faults.trades_sent += len(batch)
            await self.write(batch)
            if self.dropped or self.faults.active:
                break
            await asyncio.sleep(0)  # let the clock and other connections run
        return not self.dropped and self.stall is None

    # --- timers ---------------------------------------------------------------------------------

    def request_shutdown(self, grace_s: float | None = None) -> bool:
        """Send ``serverShutdown`` now and disconnect after the grace time."""
        self._shutdown_at = time.monotonic()
        if grace_s is not None:
            self._grace = grace_s
        return True

    def wakeup_in(self) -> float:
        now = time.monotonic()
        config = self.ctx.config
        moments = [self._next_ping, self.opened + config.max_connection_age_s]
        if self._pings:
            moments.append(min(self._pings.values()) + self.settings.pong_timeout_s)
        for moment in (self._shutdown_at, self._close_at):
            if moment is not None:
                moments.append(moment)
        return max(0.0, min(moments) - now)

    async def on_timer(self) -> bool:
        now = time.monotonic()
        config = self.ctx.config
        if now - self.opened >= config.max_connection_age_s:
            await self.close(1000, "connection age limit")
            return False
        if self._pings and now - min(self._pings.values()) >= self.settings.pong_timeout_s:
            self.drop("pong_timeout")
            return False
        if self._close_at is not None and now >= self._close_at:
            await self.close(1001, "server shutdown")
            return False
        if self._shutdown_at is not None and now >= self._shutdown_at:
            self._shutdown_at = None
            self._close_at = now + self._grace
            await self.send_control(
                wire.render_server_shutdown(self._time(now_us()), self.combined)
            )
        if now >= self._next_ping:
            self._next_ping = now + self.settings.ping_s
            if self.stall != "silent":
                payload = str(now_us()).encode()
                self._pings[payload] = now
                await self.ws.ping(payload)
        return True
