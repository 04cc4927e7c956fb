"""The exchange as the ingest sees it, tried afresh: its reference data, then a live trade on a new
WebSocket subscription within a time limit.

It uses the exchange's own feed client (the same one the ingest runs), on the live exchange or the
local simulator as the settings say, and closes it again: nothing is produced anywhere.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from k2.config import IngestSettings
from k2.exchanges.base import RawTrade
from k2.exchanges.factory import adapter_for, feed_spec


@dataclass(frozen=True)
class ProbeResult:
    """What one exchange answered: its listed symbols and the first live trade, with timings."""

    exchange: str
    symbols: int
    reference_s: float
    trade_symbol: str | None
    trade_s: float | None


async def _probe(ingest: IngestSettings, exchange: str, timeout_s: float) -> ProbeResult:
    adapter = adapter_for(exchange, ingest)
    client: Any = adapter.client(feed_spec(ingest, adapter))
    started = time.monotonic()
    listed = await asyncio.wait_for(client.load_reference(), timeout_s)
    reference_s = time.monotonic() - started
    events = client.events()
    try:
        async with asyncio.timeout(timeout_s):
            async for event in events:
                # A subscribe snapshot replays old trades; only a new one shows the feed flows.
                if isinstance(event, RawTrade) and not event.snapshot:
                    elapsed = time.monotonic() - started
                    return ProbeResult(
                        exchange, len(listed), reference_s, event.native_symbol, elapsed
                    )
    except TimeoutError:
        pass
    finally:
        await client.close()
        await events.aclose()
    return ProbeResult(exchange, len(listed), reference_s, None, None)


def probe_exchange(ingest: IngestSettings, exchange: str, timeout_s: float) -> ProbeResult:
    """Read ``exchange``'s reference data and wait up to ``timeout_s`` for a live trade.

    Raises what the client raises when the exchange cannot be reached or refuses a symbol
    (:class:`~k2.errors.ExchangeError`), or :class:`TimeoutError` when the reference data does
    not come in time.
    """
    return asyncio.run(_probe(ingest, exchange, timeout_s))
