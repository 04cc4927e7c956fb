"""Public REST reads shared by every exchange (reference data, trade history), and their pacing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal

import aiohttp

from k2.errors import ExchangeError, RateLimitedError

_Request = Callable[[], Awaitable[object]]
_RATE_LIMIT_STATUSES = (418, 429)
_DEFAULT_RETRY_AFTER_S = 5.0


async def fetch_json(
    url: str, timeout_s: float, headers: Mapping[str, str] | None = None
) -> object:
    """GET ``url`` and decode JSON (numbers as Decimal); one-line ExchangeError on failure.

    HTTP 429 and 418 (the exchange's rate limit) raise :class:`RateLimitedError` with the wait the
    exchange asked for in ``Retry-After``.
    """
    try:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, headers=dict(headers or {})) as resp,
        ):
            if resp.status in _RATE_LIMIT_STATUSES:
                retry_after = _seconds(resp.headers.get("Retry-After"))
                raise RateLimitedError(f"{url}: HTTP {resp.status}", retry_after)
            if resp.status != 200:
                raise ExchangeError(f"cannot read {url}: HTTP {resp.status}")
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ExchangeError(f"cannot read {url}: {exc or type(exc).__name__}") from exc
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise ExchangeError(f"cannot read {url}: invalid JSON ({exc})") from exc


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else _DEFAULT_RETRY_AFTER_S
    except ValueError:
        return _DEFAULT_RETRY_AFTER_S


class RestPacer:
    """Keeps requests to one exchange at least ``interval_s`` apart and honours rate-limit answers.

    :meth:`call` waits its turn, runs the request, and when the exchange answers with its rate
    limit waits as asked and tries again, up to ``max_rate_limited`` times in a row.
    """

    def __init__(self, interval_s: float, max_rate_limited: int = 5) -> None:
        self.interval_s = interval_s
        self.max_rate_limited = max_rate_limited
        self._next_at = 0.0
        self._lock = asyncio.Lock()

    async def call(self, request: _Request) -> object:
        async with self._lock:
            for attempt in range(self.max_rate_limited + 1):
                delay = self._next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                self._next_at = time.monotonic() + self.interval_s
                try:
                    return await request()
                except RateLimitedError as exc:
                    if attempt == self.max_rate_limited:
                        raise
                    self._next_at = time.monotonic() + max(exc.retry_after_s, self.interval_s)
            raise AssertionError("unreachable")
