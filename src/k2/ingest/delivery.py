"""Records on their way to Kafka, each one acknowledged by its own delivery report.

A record is handed to the producer as soon as it is made (while its frame is being handled, so
its Kafka timestamp is within that handling of its receipt), and every record carries a
delivery callback: one bound method shared by every
record of the raw topic (no closure or other object per record), which finds the symbol's
counters by the record's key. So a record Kafka refuses is counted as failed even when records
just before and after it in the same partition were written: the broker can refuse one batch
(too large, a policy) and accept the next, and librdkafka then carries on, so no record's
report may stand in for another's. Reports are served by one ``poll`` per event-loop turn that
produced records (and by the service's poller while the feed is quiet).

The delivery-latency metric samples the first record of each loop turn (its receive time in µs
travels in the callback): that record waited longest in its turn, and one sample per turn keeps
the histogram off the per-record path.

When the producer's bounded queue is full the record waits here, and so does every later one
(order per symbol is kept); :attr:`Deliveries.blocked` tells the feed to stop reading, and
:meth:`Deliveries.wait_ready` returns once everything waiting was handed over (memory stays
bounded by what one socket read delivered).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from confluent_kafka import KafkaException

from k2.transport.producer import DurableProducer

_RETRY_S = 0.05


@dataclass(eq=False)
class SymbolCounts:
    """One symbol's counters in this run (read by the summary, the metrics and tests)."""

    symbol: str
    key: bytes = b""  # the Kafka key of its records
    received: int = 0
    delivered: int = 0
    failed: int = 0
    gaps: int = 0
    backfilled: int = 0

    def __post_init__(self) -> None:
        self.key = self.key or self.symbol.encode()


_Item = tuple[str, bytes, bytes | None, SymbolCounts | None, int]


class Deliveries:
    """Hands records to the producer and counts every one's delivery report."""

    def __init__(
        self,
        producer: DurableProducer,
        observe_latency: Callable[[float], None],
        on_failure: Callable[[SymbolCounts | None, int, Any], None],
    ) -> None:
        self._producer = producer
        self._produce = producer.hot_produce()
        self._observe_latency = observe_latency
        self._on_failure = on_failure
        self._pending: list[_Item] = []  # only while the producer's queue is full
        self._by_key: dict[bytes, SymbolCounts] = {}
        self._sampled = False  # this loop turn's latency sample is taken
        self._polling = False
        self._produced = 0  # records handed over, not yet added to the producer's stats
        self._delivered = 0  # reports of delivery, not yet added to the producer's stats
        # One bound method per kind of record, made once: no object per record.
        self.tracked = self._tracked_report
        self.untracked = self._untracked_report
        self.blocked = False

    @property
    def waiting(self) -> int:
        return len(self._pending)

    def track(self, counts: SymbolCounts) -> None:
        """Count the records keyed ``counts.key`` in ``counts`` (before any is added)."""
        self._by_key[counts.key] = counts

    def add(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        counts: SymbolCounts | None,
        received_us: int,
    ) -> None:
        """Hand one record to the producer now (or queue it behind those already waiting).

        ``counts`` (tracked with :meth:`track`) counts its delivery; None for records that are
        not a symbol's trades (dead letters, gap events), which only the producer's stats count.
        """
        if not self._polling:
            self._polling = True
            asyncio.get_running_loop().call_soon(self._poll)
        if self._pending:
            self._pending.append((topic, value, key, counts, received_us))
            return
        sample = counts is not None and not self._sampled
        if counts is None:
            callback: Any = self.untracked
        elif sample:
            self._sampled = True
            callback = partial(self._sample_report, received_us)
        else:
            callback = self.tracked
        try:
            self._produce(topic, value, key, on_delivery=callback)
        except BufferError:  # the queue is full: this record and all after it wait here
            self._sampled = self._sampled and not sample
            self._pending.append((topic, value, key, counts, received_us))
            self.blocked = True
            return
        except KafkaException as exc:  # refused before queueing (a record too large)
            self._produced += 1
            self._refused(counts, exc.args[0] if exc.args else exc)
            return
        self._produced += 1

    def _poll(self) -> None:
        self._polling = False
        self._sampled = False
        self.poll()

    def poll(self) -> None:
        """Serve the delivery reports that arrived (and count them)."""
        self._producer.poll(0)
        self._fold()

    def _fold(self) -> None:
        """Add what this object counted to the producer's stats."""
        if self._produced or self._delivered:
            self._producer.counted(self._produced, self._delivered)
            self._produced = self._delivered = 0

    def flush(self) -> bool:
        """Hand what waits to the producer, in order; False when its queue filled first."""
        waiting, self._pending = self._pending, []
        self.blocked = False
        for index, item in enumerate(waiting):
            self.add(*item)
            if self._pending:  # full again: the rest stays behind it, in order
                self._pending.extend(waiting[index + 1 :])
                break
        self.poll()
        return not self._pending

    async def wait_ready(self) -> None:
        """Return once every waiting record was handed to the producer."""
        while not self.flush():
            await asyncio.sleep(_RETRY_S)

    # --- delivery reports (served by poll, on the event loop's thread) -------------------------

    def _tracked_report(self, err: Any, msg: Any) -> None:
        if err is None:
            self._by_key[msg.key()].delivered += 1
            self._delivered += 1
        else:
            self._refused(self._by_key[msg.key()], err)

    def _sample_report(self, received_us: int, err: Any, msg: Any) -> None:
        self.tracked(err, msg)
        if err is None:
            self._observe_latency(max(0.0, time.time() - received_us / 1e6))

    def _untracked_report(self, err: Any, msg: Any) -> None:
        if err is None:
            self._delivered += 1
        else:
            self._refused(None, err)

    def _refused(self, counts: SymbolCounts | None, err: Any) -> None:
        self._fold()
        self._producer.acknowledged(1, err)
        if counts is not None:
            counts.failed += 1
        self._on_failure(counts, 1, err)
