"""Public REST reads shared by every venue (reference data, trade history)."""

from __future__ import annotations

import json
from decimal import Decimal

import aiohttp

from k2.errors import ExchangeError


async def fetch_json(url: str, timeout_s: float) -> object:
    """GET ``url`` and decode JSON (numbers as Decimal); one-line ExchangeError on failure."""
    try:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
            if resp.status != 200:
                raise ExchangeError(f"cannot read {url}: HTTP {resp.status}")
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ExchangeError(f"cannot read {url}: {exc or type(exc).__name__}") from exc
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise ExchangeError(f"cannot read {url}: invalid JSON ({exc})") from exc
