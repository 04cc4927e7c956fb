"""Records on their way to Kafka: queued per event-loop turn, acknowledged per symbol run.

Every record the feed produces in one turn of the event loop (all the frames one socket read
delivered) is queued here and handed to the producer in one pass right after, with one poll.
Only the last record of each symbol in the pass carries a delivery callback, and its report
counts the whole run: a symbol's records share one partition (key = symbol), and the
idempotent producer (``acks=all``) writes and acknowledges a partition's records in order, so
when the last one is acknowledged so are those before it; when it fails, the run is counted as
failed. That keeps a Python callback, a closure and a poll off every single record while every
record is still accounted for.

When the producer's bounded queue is full the pass stops where it is: the rest waits here,
:attr:`Deliveries.blocked` tells the feed to stop reading, and :meth:`Deliveries.wait_ready`
returns once everything waiting was handed over (memory stays bounded by what one socket read
delivered).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from k2.transport.producer import DurableProducer

_RETRY_S = 0.05


@dataclass(eq=False)
class SymbolCounts:
    """One symbol's counters in this run (read by the summary, the metrics and tests)."""

    symbol: str
    received: int = 0
    delivered: int = 0
    failed: int = 0
    gaps: int = 0
    backfilled: int = 0
    last_received_mono: float = 0.0


_Item = tuple[str, bytes, bytes | None, SymbolCounts | None]


class Deliveries:
    """The records waiting for the producer, and the acknowledgement of each symbol's runs."""

    def __init__(
        self,
        producer: DurableProducer,
        observe_latency: Callable[[float], None],
        on_failure: Callable[[SymbolCounts, int, Any], None],
    ) -> None:
        self._producer = producer
        self._observe_latency = observe_latency
        self._on_failure = on_failure
        self._pending: list[_Item] = []
        self._last: dict[SymbolCounts, int] = {}  # index of each symbol's last waiting record
        self._runs: dict[SymbolCounts, int] = {}  # records since the symbol's last callback
        self._first_us: dict[SymbolCounts, int] = {}  # receive time of the run's first record
        self._scheduled = False
        self._untracked = self._acknowledged_one  # one bound method for every untracked record
        self.blocked = False

    @property
    def waiting(self) -> int:
        return len(self._pending)

    def add(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        counts: SymbolCounts | None,
        received_us: int,
    ) -> None:
        """Queue one record; it is handed to the producer at the end of this loop turn."""
        if counts is not None:
            self._last[counts] = len(self._pending)
            self._runs[counts] = self._runs.get(counts, 0) + 1
            if counts not in self._first_us:
                self._first_us[counts] = received_us
        self._pending.append((topic, value, key, counts))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> bool:
        """Hand every waiting record to the producer; False when its queue filled first."""
        pending = self._pending
        if not pending:
            self.blocked = False
            return True
        send, last = self._producer.send, self._last
        for index, (topic, value, key, counts) in enumerate(pending):
            callback: Any = None
            if counts is None:
                callback = self._untracked  # dead letters and gap events: rare, each counted
            elif last.get(counts) == index:
                callback = partial(
                    self._acknowledged, counts, self._runs[counts], self._first_us[counts]
                )
            if not send(topic, value, key, callback):
                self._keep(index)
                self._producer.poll(0)
                return False
            if counts is not None and callback is not None:
                del last[counts], self._runs[counts], self._first_us[counts]
        pending.clear()
        self.blocked = False
        self._producer.poll(0)
        return True

    def _keep(self, index: int) -> None:
        """Keep the records from ``index`` on, re-indexing each symbol's last one."""
        self._pending = self._pending[index:]
        self._last = {counts: at - index for counts, at in self._last.items()}
        self.blocked = True

    async def wait_ready(self) -> None:
        """Return once every waiting record was handed to the producer."""
        while not self.flush():
            await asyncio.sleep(_RETRY_S)

    def _acknowledged_one(self, err: Any, msg: Any) -> None:
        self._producer.acknowledged(1, err)

    def _acknowledged(
        self, counts: SymbolCounts, records: int, first_us: int, err: Any, msg: Any
    ) -> None:
        self._producer.acknowledged(records, err)
        if err is None:
            counts.delivered += records
            self._observe_latency(max(0.0, time.time() - first_us / 1e6))
        else:
            counts.failed += records
            self._on_failure(counts, records, err)
