"""Delivery bookkeeping without a broker: a full producer queue keeps records in order and
stops the feed, and every report counts exactly its own record."""

from __future__ import annotations

import asyncio
from typing import Any

from k2.ingest.delivery import Deliveries, SymbolCounts


class _Message:
    def __init__(self, key: bytes | None) -> None:
        self._key = key

    def key(self) -> bytes | None:
        return self._key


class _SmallQueue:
    """A producer stand-in whose local queue holds ``room`` records; reports on poll."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.queued: list[tuple[bytes, Any, bool]] = []  # value, callback, refused
        self.sent: list[bytes] = []
        self.produced = self.delivered = self.failed = 0
        self.refuse: set[bytes] = set()

    def hot_produce(self) -> Any:
        def produce(topic: str, value: bytes, key: bytes | None, on_delivery: Any) -> None:
            if len(self.queued) >= self.room:
                raise BufferError("queue full")
            self.queued.append((value, (key, on_delivery), value in self.refuse))

        return produce

    def poll(self, timeout: float) -> None:
        queued, self.queued = self.queued, []
        for value, (key, callback), refused in queued:
            self.sent.append(value)
            callback("refused" if refused else None, _Message(key))

    def counted(self, produced: int, delivered: int) -> None:
        self.produced += produced
        self.delivered += delivered

    def acknowledged(self, count: int, error: Any) -> None:
        self.failed += count


def test_a_full_queue_keeps_records_in_order_and_each_report_counts_its_own_record() -> None:
    """Records past the queue's room wait in order and block the feed until handed over; the
    one refused record is the one failure, whatever its neighbours did."""
    producer = _SmallQueue(room=3)
    failures: list[Any] = []
    deliveries = Deliveries(producer, lambda _: None, lambda c, n, e: failures.append((c, e)))  # type: ignore[arg-type]
    counts = SymbolCounts("BTC/USD")
    deliveries.track(counts)
    values = [f"trade-{index}".encode() for index in range(8)]
    producer.refuse.add(values[4])

    async def scenario() -> None:
        for value in values:
            deliveries.add("raw", value, counts.key, counts, 1)
        assert deliveries.blocked and deliveries.waiting == 5
        await deliveries.wait_ready()
        deliveries.poll()

    asyncio.run(scenario())
    assert producer.sent == values
    assert not deliveries.blocked and deliveries.waiting == 0
    assert (counts.delivered, counts.failed) == (7, 1)
    assert failures == [(counts, "refused")]
    assert (producer.produced, producer.delivered, producer.failed) == (8, 7, 1)
