"""Reading an exchange's REST API: unreachable reference data is one line naming the URL, and
requests are paced and wait out a rate limit as told."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from k2.errors import ExchangeError, RateLimitedError
from k2.transport.http import RestPacer, fetch_json


def test_unreachable_reference_data_is_one_line_naming_the_url() -> None:
    """An exchange's REST API that does not answer is reported in one line naming the URL."""
    with socket.socket() as probe:  # a local port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/api/v3/exchangeInfo"
    with pytest.raises(ExchangeError, match=r"cannot read http://127\.0\.0\.1") as caught:
        asyncio.run(fetch_json(url, 5.0))
    assert "\n" not in str(caught.value)


def test_rest_pacer_spaces_requests_and_waits_out_a_rate_limit() -> None:
    """REST requests are spaced by the exchange's interval, and a rate-limit answer is waited out
    for as long as the exchange asked."""
    calls: list[float] = []

    async def scenario() -> object:
        pacer = RestPacer(0.05, max_rate_limited=2)

        async def request() -> object:
            calls.append(time.monotonic())
            if len(calls) == 2:
                raise RateLimitedError("429", 0.2)
            return len(calls)

        await pacer.call(request)
        return await pacer.call(request)

    assert asyncio.run(scenario()) == 3
    assert calls[1] - calls[0] >= 0.045
    assert calls[2] - calls[1] >= 0.19


def test_rest_pacer_gives_up_after_repeated_rate_limits() -> None:
    """An exchange that keeps answering rate limited is given up on after the allowed retries,
    with the rate-limit error."""

    async def scenario() -> object:
        pacer = RestPacer(0.0, max_rate_limited=1)

        async def request() -> object:
            raise RateLimitedError("429", 0.01)

        return await pacer.call(request)

    with pytest.raises(RateLimitedError):
        asyncio.run(scenario())
