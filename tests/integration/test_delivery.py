"""Delivery accounting against a real broker: every record Kafka refuses is counted as failed, and
every record counted as delivered is in the topic."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from k2.config import Settings
from k2.ingest.delivery import Deliveries, SymbolCounts
from k2.stack.manager import Stack
from k2.transport.offsets import watermarks
from k2.transport.producer import DurableProducer, ProducerOptions
from k2.transport.topics import TopicAdmin, TopicSpec
from tests.polling import Pending, wait_until_async


def records_in(settings: Settings, topic: str) -> int:
    consumer = Consumer({**settings.kafka_config(), "group.id": "delivery-count"})
    try:
        low, high = watermarks(consumer, TopicPartition(topic, 0), 30)
    finally:
        consumer.close()
    return int(high - low)


def test_a_record_the_broker_refuses_is_failed_while_its_neighbours_are_delivered(
    stack: Stack, settings: Settings
) -> None:
    """One symbol, one partition: the broker refuses the one batch holding an oversized record
    and writes the batches around it; only that record counts as failed, and the symbol's
    delivered count equals what the topic holds. A record larger than the producer accepts at
    all is failed at once."""
    topic = f"delivery.refused.{time.monotonic_ns()}"
    TopicAdmin(settings.kafka_config()).ensure(
        [TopicSpec(topic, 1, 1, {"max.message.bytes": "2000"})]
    )
    producer = DurableProducer(settings.kafka_config(), ProducerOptions(batch_bytes=1000))
    failures: list[tuple[SymbolCounts | None, Any]] = []
    deliveries = Deliveries(producer, lambda _: None, lambda c, _, e: failures.append((c, e)))
    counts = SymbolCounts("BTCUSDT")
    deliveries.track(counts)
    # Random bytes, so lz4 cannot shrink the large ones below the topic's limit.
    sizes = [100] * 5 + [5000] + [100] * 5 + [2_000_000] + [100] * 3

    async def produce_and_wait() -> None:
        for size in sizes:
            deliveries.add(topic, os.urandom(size), counts.key, counts, time.time_ns() // 1000)

        def reported() -> bool | Pending:
            deliveries.poll()
            done = counts.delivered + counts.failed >= len(sizes)
            return done or Pending({"delivered": counts.delivered, "failed": counts.failed})

        await wait_until_async(
            reported, 60, f"a delivery report for each of the {len(sizes)} records", every_s=0.05
        )

    asyncio.run(produce_and_wait())
    assert producer.close(30) == 0
    assert (counts.delivered, counts.failed) == (len(sizes) - 2, 2)
    assert records_in(settings, topic) == counts.delivered
    assert [c for c, _ in failures] == [counts, counts]
    assert producer.stats.failed == 2 and producer.stats.delivered == len(sizes) - 2
