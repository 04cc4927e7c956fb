"""One WebSocket client connection with the safety every feed needs; it names no exchange.

Frames are handed to a callback as the socket delivers them (picows parses them in C; there is
no coroutine, queue or task per frame), so a feed handles a burst of frames in one pass and a
slow consumer pauses the socket itself (:meth:`WsConnection.pause_reading`), letting TCP push
back on the exchange instead of buffering without limit.

- **Liveness**: the connection ends with :class:`~k2.errors.WsLivenessError` when no frame at
  all arrived within ``liveness_timeout_s`` (data frames, pings and pongs all count, so an exchange
  whose only traffic is protocol pings stays alive, and a silent stalled one does not;
  ``liveness_data_only`` makes only data frames count).
- **Keep-alive**: the exchange's ping frames are answered with pongs, always; with
  ``ping_interval_s`` set we also send our own ping frames when the connection is idle and drop
  it when no pong comes back within ``ping_timeout_s``. Exchange clients switch that off where the
  exchange pings (Binance counts client pings against its message limit) or has an
  application-level ping (Kraken).
- **Control-message rate**: :meth:`WsConnection.send_control` waits for a token from a
  :class:`TokenBucket` (exchanges cut connections that send too many requests; Binance allows 5
  incoming messages per second including pings and pongs, so the default is below that).
- **Frame size**: frames larger than ``max_frame_bytes`` close the connection before they are
  buffered; the parsers have a smaller limit of their own and dead-letter absurd frames.
- **Reconnect pacing**: :func:`backoff_delay` (capped exponential, full jitter) and
  :class:`Backoff`, used by the feed clients between connection attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from picows import WSError, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from k2.errors import WsConnectionError, WsLivenessError

log = structlog.get_logger(__name__)

Clock = Callable[[], float]
FrameHandler = Callable[[str, int, int], None]  # text, receive time (µs), position from 0
_BUFFER_FRAMES = 100_000  # frames a connection holds before a handler is attached
_EPSILON = 1e-9
_WATCH_S = 1.0  # how often liveness and keep-alive are checked


@dataclass(frozen=True, slots=True)
class WsOptions:
    """How one WebSocket connection behaves; exchange clients choose the values."""

    liveness_timeout_s: float = 10.0
    liveness_data_only: bool = False  # True: only data frames count, not pings/pongs
    open_timeout_s: float = 10.0
    close_timeout_s: float = 5.0
    ping_interval_s: float | None = 20.0
    ping_timeout_s: float | None = 20.0
    max_frame_bytes: int = 16 * 2**20
    control_rate_per_s: float = 3.0
    control_burst: float = 3.0


def backoff_delay(
    attempt: int, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): capped exponential, full jitter.

    Uniform in ``[0, min(cap_s, base_s * 2**attempt)]`` ("full jitter"): clients that lost their
    connections together spread their retries instead of hitting the exchange in waves.
    """
    ceiling = min(cap_s, base_s * 2.0 ** min(max(attempt, 0), 62))
    return rand() * ceiling


class Backoff:
    """Successive reconnect delays; :meth:`reset` after a connection proved healthy."""

    def __init__(
        self, base_s: float = 0.5, cap_s: float = 30.0, rand: Callable[[], float] = random.random
    ) -> None:
        self._base_s = base_s
        self._cap_s = cap_s
        self._rand = rand
        self.attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; counts the attempt."""
        delay = backoff_delay(self.attempt, self._base_s, self._cap_s, self._rand)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


class TokenBucket:
    """Token-bucket rate limiter with an injected clock (pure arithmetic, plus async waiting).

    Holds at most ``burst`` tokens, refilled at ``rate_per_s``; each message spends one.
    """

    def __init__(self, rate_per_s: float, burst: float, clock: Clock = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate_per_s > 0 and burst >= 1")
        self._rate = rate_per_s
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._stamp = now

    def try_acquire(self) -> bool:
        """Spend a token if one is available now."""
        self._refill()
        if self._tokens >= 1 - _EPSILON:  # float refill lands just short of whole tokens
            self._tokens = max(0.0, self._tokens - 1)
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until a token is available (0 if one is available now)."""
        self._refill()
        return max(0.0, (1 - self._tokens) / self._rate)

    async def acquire(self) -> None:
        """Wait until a token is available, then spend it."""
        while not self.try_acquire():
            await asyncio.sleep(self.wait_time())


class _Listener(WSListener):
    """picows' per-connection callbacks, forwarded to :class:`WsConnection`."""

    def __init__(self, connection: WsConnection) -> None:
        super().__init__()
        self._connection = connection
        self._fragments: list[bytes] = []

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        connection = self._connection
        connection.last_activity = time.monotonic()
        kind = frame.msg_type
        if kind == WSMsgType.TEXT or kind == WSMsgType.BINARY:
            if frame.fin:
                connection.deliver(frame.get_payload_as_utf8_text())
            else:
                self._fragments = [frame.get_payload_as_bytes()]
        elif kind == WSMsgType.CONTINUATION:
            self._fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                whole, self._fragments = b"".join(self._fragments), []
                connection.deliver(whole.decode("utf-8", "replace"))
        elif kind == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif kind == WSMsgType.PONG:
            connection.pong_received()
        elif kind == WSMsgType.CLOSE:
            connection.closing(f"closed by the exchange ({frame.get_close_code()})")
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._connection.disconnected()


class WsConnection:
    """An open WebSocket connection: frames to a handler, liveness watched, sends rate-limited.

    The handler (see :meth:`attach`) runs synchronously for every text frame, in arrival order,
    with the frame's receive time and its position in the connection; an exception it raises
    ends the connection and is re-raised by :meth:`wait_closed`. Frames that arrive before a
    handler is attached are held (at most 100,000; more ends the connection) and handed over on
    :meth:`attach`, so a second connection can be opened ahead of the one it replaces.
    """

    def __init__(self, url: str, options: WsOptions) -> None:
        self._options = options
        self._handler: FrameHandler | None = None
        self._held: list[tuple[str, int, int]] = []
        self._bucket = TokenBucket(options.control_rate_per_s, options.control_burst)
        self._transport: WSTransport | None = None
        self._closed = asyncio.Event()
        self._failure: BaseException | None = None
        self._watch: asyncio.Task[None] | None = None
        self._ping_sent: float | None = None
        self.url = url
        self.connection_id = uuid.uuid4().hex[:16]
        self.opened_at = time.monotonic()
        self.last_activity = self.opened_at
        self.last_data = self.opened_at
        self.frames_received = 0

    @classmethod
    async def open(cls, url: str, options: WsOptions) -> WsConnection:
        """Connect to ``url``; raises :class:`~k2.errors.WsConnectionError` if it cannot."""
        connection = cls(url, options)
        try:
            async with asyncio.timeout(options.open_timeout_s):
                transport, _ = await ws_connect(
                    lambda: _Listener(connection),
                    url,
                    websocket_handshake_timeout=options.open_timeout_s,
                    enable_auto_pong=False,  # answered in the listener, so pings count as traffic
                    max_frame_size=options.max_frame_bytes,
                    disconnect_on_exception=True,
                )
        except (OSError, TimeoutError, WSError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            raise WsConnectionError(f"cannot connect to {url}: {reason}") from exc
        connection._transport = transport
        connection.opened_at = connection.last_activity = connection.last_data = time.monotonic()
        connection._watch = asyncio.get_running_loop().create_task(connection._watchdog())
        log.info("ws_connected", url=url, connection_id=connection.connection_id)
        return connection

    @property
    def age_s(self) -> float:
        """Seconds since the connection opened."""
        return time.monotonic() - self.opened_at

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def attach(self, handler: FrameHandler) -> None:
        """Send every frame to ``handler`` from now on, the frames held so far first."""
        held, self._held = self._held, []
        self._handler = handler
        for text, received_us, position in held:
            self._call(text, received_us, position)

    def deliver(self, text: str) -> None:
        """One received text frame, to the handler or held (called by the listener)."""
        if self._failure is not None:
            return
        position = self.frames_received
        self.frames_received = position + 1
        self.last_data = self.last_activity
        received_us = time.time_ns() // 1000
        if self._handler is not None:
            self._call(text, received_us, position)
        elif len(self._held) < _BUFFER_FRAMES:
            self._held.append((text, received_us, position))
        else:
            self.fail(WsConnectionError(f"{self.url}: too many frames before a reader attached"))

    def _call(self, text: str, received_us: int, position: int) -> None:
        assert self._handler is not None  # checked by the callers
        try:
            self._handler(text, received_us, position)
        except Exception as exc:  # noqa: BLE001 - the feed's verdict on this connection: end it, re-raise later
            self.fail(exc)

    def fail(self, exc: BaseException) -> None:
        """End the connection; :meth:`wait_closed` raises ``exc``."""
        if self._failure is None:
            self._failure = exc
        if self._transport is not None:
            self._transport.disconnect()
        else:
            self._closed.set()

    def closing(self, reason: str) -> None:
        if self._failure is None:
            self._failure = WsConnectionError(f"connection to {self.url} {reason}")

    def disconnected(self) -> None:
        if self._failure is None:
            self._failure = WsConnectionError(f"connection to {self.url} closed")
        self._closed.set()

    def pong_received(self) -> None:
        self._ping_sent = None

    def pause_reading(self) -> None:
        """Stop reading the socket (TCP then pushes back on the exchange)."""
        if self._transport is not None and not self.closed:
            self._transport.underlying_transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.underlying_transport.resume_reading()

    async def wait_closed(self) -> None:
        """Wait until the connection ends, then raise why (always a WsConnectionError, or what
        the frame callback raised)."""
        await self._closed.wait()
        failure = self._failure or WsConnectionError(f"connection to {self.url} closed")
        raise failure

    async def _watchdog(self) -> None:
        """Liveness and our own keep-alive pings, checked once a second."""
        options = self._options
        while not self.closed:
            await asyncio.sleep(min(_WATCH_S, options.liveness_timeout_s / 4))
            now = time.monotonic()
            last = self.last_data if options.liveness_data_only else self.last_activity
            if now - last >= options.liveness_timeout_s:
                limit = options.liveness_timeout_s
                self.fail(WsLivenessError(f"no frame from {self.url} within {limit:g} s"))
                return
            self._keepalive(now)

    def _keepalive(self, now: float) -> None:
        interval, timeout = self._options.ping_interval_s, self._options.ping_timeout_s
        if interval is None or self._transport is None:
            return
        if self._ping_sent is not None:
            if timeout is not None and now - self._ping_sent >= timeout:
                self.fail(WsConnectionError(f"no pong from {self.url} within {timeout:g} s"))
        elif now - self.last_activity >= interval:
            self._ping_sent = now
            self._transport.send_ping()

    async def send_control(self, text: str) -> None:
        """Send a control request, waiting for the rate limiter first."""
        await self._bucket.acquire()
        if self._transport is None or self.closed:
            raise WsConnectionError(f"connection to {self.url} closed")
        self._transport.send(WSMsgType.TEXT, text.encode())

    async def close(self) -> None:
        """Close the connection (idempotent, never raises on an already broken connection)."""
        if self._watch is not None:
            self._watch.cancel()
        transport = self._transport
        if transport is None or self.closed:
            self._closed.set()
            return
        self.closing("closed by K2")
        with contextlib.suppress(Exception):
            transport.send_close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._options.close_timeout_s):
                await transport.wait_disconnected()
        transport.disconnect()
        self._closed.set()
