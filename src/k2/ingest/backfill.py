"""Gap recovery beside the live feed: concurrent, bounded, within the exchange's REST budget.

A gap (ids the exchange skipped, or missed across a reconnect or restart) is queued here and the
feed goes on reading live trades at once. Up to ``concurrency`` symbols are backfilled at the
same time; every request still waits its turn in the exchange's REST pacer, which every gap of the
process shares (and which each shard sizes to its share of the exchange's budget). Gaps of one
symbol that are close together (within one page of history) are read with one request and
published one gap event each. At most ``pending_max`` gaps wait; a gap beyond that is published
as unfilled at once, so memory stays bounded when an exchange loses ids faster than its REST budget
can recover them.

Order: backfilled trades reach Kafka after live trades that came later, so within a symbol's
partition ids are no longer strictly rising. That is safe downstream: Silver and Gold order a
symbol's trades by trade id (bars by exchange time, then trade id) and keep one row per
``message_id``, and a backfilled trade has the same ``message_id`` as the live one it stands in
for. On a stop the ingest waits (bounded) for the gaps in progress; one still waiting after
that is published as unfilled, so no missing range goes unreported (a restart resumes from the
highest id in the topic and would not see it again).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from k2.errors import BackfillError
from k2.exchanges.base import Gap, RawTrade
from k2.exchanges.contract import ExchangeAdapter, FeedSpec

log = structlog.get_logger(__name__)

_MERGE_IDS = 1_000  # gaps closer than this are read with one request (one page of history)


@dataclass(frozen=True, slots=True)
class GapJob:
    """One gap, with the match time of the trade before it (where time-paged history starts)."""

    gap: Gap
    after_us: int | None


@dataclass
class Outcome:
    """What a backfill found for one gap."""

    job: GapJob
    trades: list[RawTrade] = field(default_factory=list)
    reason: str | None = None

    @property
    def missing(self) -> int:
        return self.job.gap.last_missing - self.job.gap.first_missing + 1

    @property
    def unfilled(self) -> int:
        found = {trade.trade_key for trade in self.trades}
        return self.missing - len(found)  # arithmetic: a gap may span billions of ids


Deliver = Callable[[Outcome], Coroutine[Any, Any, None]]


class Backfills:
    """The gaps waiting for REST history, and the workers that fill them."""

    def __init__(
        self,
        adapter: ExchangeAdapter,
        spec: FeedSpec,
        deliver: Deliver,
        concurrency: int,
        pending_max: int,
        max_trades: int,
    ) -> None:
        self._adapter = adapter
        self._spec = spec
        self._deliver = deliver
        self._pending: dict[str, list[GapJob]] = {}
        self._count = 0
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._busy: set[str] = set()
        self._active: dict[str, list[list[GapJob]]] = {}  # groups a worker has yet to deliver
        self._concurrency = concurrency
        self._pending_max = pending_max
        self._max_trades = max_trades
        self._workers: list[asyncio.Task[None]] = []
        self._refused: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        """Gaps queued or being filled."""
        return self._count

    def submit(self, job: GapJob) -> None:
        """Queue a gap; returns at once."""
        if not self._workers:
            self._workers = [asyncio.create_task(self._work()) for _ in range(self._concurrency)]
        if self._count >= self._pending_max:
            reason = f"{self._count} gaps were already waiting for backfill"
            task = asyncio.create_task(self._deliver(Outcome(job, reason=reason)))
            self._refused.add(task)
            task.add_done_callback(self._refused.discard)
            return
        symbol = job.gap.native_symbol
        self._count += 1
        queued = self._pending.setdefault(symbol, [])
        queued.append(job)
        if len(queued) == 1 and symbol not in self._busy:
            self._queue.put_nowait(symbol)

    async def drain(self, timeout_s: float) -> None:
        """Wait (bounded) until no gap is waiting."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self._count:
                    await asyncio.sleep(0.05)

    async def stop(self) -> list[GapJob]:
        """Stop the workers; the gaps that were still waiting."""
        for task in [*self._workers, *self._refused]:
            task.cancel()
        await asyncio.gather(*self._workers, *self._refused, return_exceptions=True)
        self._workers = []
        left = [job for jobs in self._pending.values() for job in jobs]
        left += [job for groups in self._active.values() for group in groups for job in group]
        self._pending.clear()
        self._active.clear()
        self._count = 0
        return left

    async def _work(self) -> None:
        while True:
            symbol = await self._queue.get()
            self._busy.add(symbol)
            groups = self._active[symbol] = _groups(self._pending.pop(symbol, []), self._max_trades)
            try:
                while groups:
                    await self._fill(symbol, groups[0])
                    self._count -= len(groups.pop(0))
            finally:
                self._busy.discard(symbol)
                if not groups:
                    self._active.pop(symbol, None)
            if self._pending.get(symbol):
                self._queue.put_nowait(symbol)

    async def _fill(self, symbol: str, jobs: list[GapJob]) -> None:
        first = jobs[0].gap.first_missing
        last = jobs[-1].gap.last_missing
        reason = None
        found: list[RawTrade] = []
        try:
            found = await self._adapter.backfill(self._spec, symbol, first, last, jobs[0].after_us)
        except BackfillError as exc:
            reason = f"backfill failed: {exc}"
        except Exception as exc:  # noqa: BLE001 - a worker must survive anything one request does
            log.error("ingest_backfill_crashed", symbol=symbol, error=str(exc))
            reason = f"backfill failed: {exc}"
        for job in jobs:
            gap = job.gap
            trades = [
                trade
                for trade in found
                if trade.trade_key is not None
                and gap.first_missing <= trade.trade_key <= gap.last_missing
            ]
            await self._deliver(Outcome(job, trades, reason))


def _groups(jobs: list[GapJob], max_trades: int) -> list[list[GapJob]]:
    """Jobs in id order, grouped where one request of history covers them together."""
    groups: list[list[GapJob]] = []
    for job in sorted(jobs, key=lambda j: j.gap.first_missing):
        if groups:
            group = groups[-1]
            span = job.gap.last_missing - group[0].gap.first_missing + 1
            near = job.gap.first_missing - group[-1].gap.last_missing <= _MERGE_IDS
            if near and span <= max(max_trades, 1):
                group.append(job)
                continue
        groups.append([job])
    return groups
