"""Time-interval gaps: what a break in a feed may have lost where trade ids cannot tell.

Where a symbol's ids do not reveal a gap (Kraken v1 sends none; Bybit spot numbers every
symbol's trades from one counter), the ingest notes, per symbol, the last trade delivered before
each break (a reconnect of its connection, or a restart: the newest record in the raw topic).
The symbol's first new trade after it closes the interval, which is handed to the exchange's
:meth:`~k2.exchanges.contract.ExchangeAdapter.backfill_interval` beside the live feed; whatever
that recovers is delivered as backfilled trades and the interval is published as one gap event
with its times, filled or not and why. On a stop the ingest waits (bounded) for intervals in
progress; one still open after that is published as unfilled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

from k2.exchanges.contract import ExchangeAdapter, FeedSpec, Interval, IntervalFill

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Break:
    """Where a symbol's feed broke: the match time and id of its last trade before it."""

    exchange_us: int
    trade_id: int | None


Deliver = Callable[[Interval, IntervalFill], Coroutine[Any, Any, None]]


class IntervalGaps:
    """The intervals being read from the exchange's history, each in its own task."""

    def __init__(self, adapter: ExchangeAdapter, spec: FeedSpec, deliver: Deliver) -> None:
        self._adapter = adapter
        self._spec = spec
        self._deliver = deliver
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        return len(self._tasks)

    def submit(self, interval: Interval) -> None:
        """Read the exchange's history for ``interval`` beside the feed; returns at once."""
        task = asyncio.get_running_loop().create_task(self._fill(interval))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, interval: Interval) -> None:
        try:
            found = await self._adapter.backfill_interval(self._spec, interval)
        except asyncio.CancelledError:
            await self._deliver(
                interval, IntervalFill([], False, "the ingest stopped before backfilling it")
            )
            raise
        except Exception as exc:  # noqa: BLE001 - the feed must survive anything one request does
            log.error("ingest_backfill_crashed", symbol=interval.symbol, error=str(exc))
            found = IntervalFill([], False, f"backfill failed: {exc}")
        await self._deliver(interval, found)

    async def stop(self, timeout_s: float) -> None:
        """Wait (bounded) for the intervals in progress, then publish the rest as unfilled."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
