"""One WebSocket client connection with the safety every feed needs; it names no venue.

- **Liveness**: :meth:`WsConnection.recv` raises :class:`~k2.errors.WsLivenessError` when no
  bytes at all arrived within ``liveness_timeout_s`` (data frames, pings and pongs all count, so a
  venue whose only traffic is protocol pings stays alive, and a silent stalled one does not;
  ``liveness_data_only`` makes only data frames count).
- **Keep-alive**: the library answers the venue's ping frames with pongs by itself, always (no
  option turns that off); with ``ping_interval_s`` set we also send our own ping frames and drop
  the connection when no pong comes back within ``ping_timeout_s``. Venue clients switch that off
  where the venue pings (Binance counts client pings against its message limit) or has an
  application-level ping (Kraken).
- **Control-message rate**: :meth:`WsConnection.send_control` waits for a token from a
  :class:`TokenBucket` (venues cut connections that send too many requests; Binance allows 5
  incoming messages per second including pings and pongs, so the default is below that).
- **Frame size**: frames larger than ``max_frame_bytes`` close the connection (1009) before they
  are buffered; the parsers have a smaller limit of their own and dead-letter absurd frames.
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
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from k2.errors import WsConnectionError, WsLivenessError

log = structlog.get_logger(__name__)

Clock = Callable[[], float]
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class WsOptions:
    """How one WebSocket connection behaves; venue clients choose the values."""

    liveness_timeout_s: float = 10.0
    liveness_data_only: bool = False  # True: only data frames count, not pings/pongs
    open_timeout_s: float = 10.0
    close_timeout_s: float = 5.0
    ping_interval_s: float | None = 20.0
    ping_timeout_s: float | None = 20.0
    max_frame_bytes: int = 16 * 2**20
    max_queue: int = 256  # frames buffered by the library before it stops reading the socket
    control_rate_per_s: float = 3.0
    control_burst: float = 3.0


def backoff_delay(
    attempt: int, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): capped exponential, full jitter.

    Uniform in ``[0, min(cap_s, base_s * 2**attempt)]`` ("full jitter"): clients that lost their
    connections together spread their retries instead of hitting the venue in waves.
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


class _TrackedConnection(ClientConnection):
    """The library's connection, noting when any bytes last arrived (frames of every kind)."""

    last_activity: float = 0.0

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        super().data_received(data)


class WsConnection:
    """An open WebSocket connection: receive with a liveness deadline, send rate-limited."""

    def __init__(self, ws: _TrackedConnection, url: str, options: WsOptions) -> None:
        self._ws = ws
        self._options = options
        self._bucket = TokenBucket(options.control_rate_per_s, options.control_burst)
        self.url = url
        self.connection_id = uuid.uuid4().hex[:16]
        self.opened_at = time.monotonic()
        self.frames_received = 0
        self._last_data = self.opened_at

    @classmethod
    async def open(cls, url: str, options: WsOptions) -> WsConnection:
        """Connect to ``url``; raises :class:`~k2.errors.WsConnectionError` if it cannot."""
        try:
            ws = await connect(
                url,
                open_timeout=options.open_timeout_s,
                close_timeout=options.close_timeout_s,
                ping_interval=options.ping_interval_s,
                ping_timeout=options.ping_timeout_s,
                max_size=options.max_frame_bytes,
                max_queue=options.max_queue,
                create_connection=_TrackedConnection,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise WsConnectionError(f"cannot connect to {url}: {exc}") from exc
        if not isinstance(ws, _TrackedConnection):  # pragma: no cover - guaranteed by factory
            raise WsConnectionError(f"unexpected connection type for {url}")
        ws.last_activity = time.monotonic()
        connection = cls(ws, url, options)
        log.info("ws_connected", url=url, connection_id=connection.connection_id)
        return connection

    @property
    def age_s(self) -> float:
        """Seconds since the connection opened."""
        return time.monotonic() - self.opened_at

    async def recv(self) -> str:
        """The next text frame (binary frames decoded as UTF-8 with replacement).

        Raises :class:`~k2.errors.WsLivenessError` when nothing arrived within the liveness
        deadline and :class:`~k2.errors.WsConnectionError` when the connection closed.
        """
        liveness = self._options.liveness_timeout_s
        data_only = self._options.liveness_data_only
        while True:
            last = self._last_data if data_only else self._ws.last_activity
            remaining = last + liveness - time.monotonic()
            if remaining <= 0:
                raise WsLivenessError(f"no frame from {self.url} within {liveness:g} s")
            try:
                async with asyncio.timeout(remaining):
                    message = await self._ws.recv()
            except TimeoutError:
                continue  # re-check: pings or partial frames may have arrived meanwhile
            except ConnectionClosed as exc:
                raise WsConnectionError(f"connection to {self.url} closed: {exc}") from exc
            self.frames_received += 1
            if data_only:
                self._last_data = time.monotonic()
            if isinstance(message, bytes):
                return message.decode("utf-8", "replace")
            return message

    async def send_control(self, text: str) -> None:
        """Send a control request, waiting for the rate limiter first."""
        await self._bucket.acquire()
        try:
            await self._ws.send(text)
        except ConnectionClosed as exc:
            raise WsConnectionError(f"connection to {self.url} closed: {exc}") from exc

    async def close(self) -> None:
        """Close the connection (idempotent, never raises on an already broken connection)."""
        with contextlib.suppress(OSError, ConnectionClosed):
            await self._ws.close()
