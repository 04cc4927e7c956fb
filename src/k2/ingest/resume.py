"""The resume point per symbol, read back from the raw topic itself.

The raw topic is the record of what was delivered: there is no second state store that could
disagree with it. At start-up the ingest reads the tail of every partition (a symbol always lands
in the partition of its key, so its newest records are at the end of one partition), decodes each
record with its own writer schema, and keeps per symbol the highest trade id and the newest
record. The next trade id received from the venue is then compared with that point to find what
was missed while the ingest was down.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

log = structlog.get_logger(__name__)

TradeKey = Callable[[Mapping[str, Any]], int | None]


@dataclass(frozen=True)
class ResumePoint:
    """What the topic says was last delivered for one symbol."""

    symbol: str
    last_trade_id: int | None
    last_received_us: int
    last_record: Mapping[str, Any]


def read_resume_points(
    kafka_config: dict[str, str],
    registry: SchemaRegistryClient,
    topic: str,
    trade_key: TradeKey,
    tail: int = 2_000,
    timeout_s: float = 30.0,
) -> dict[str, ResumePoint]:
    """Per symbol, the newest delivered record among the last ``tail`` records of each partition."""
    consumer = Consumer(
        {
            **kafka_config,
            "group.id": "k2-ingest-resume",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "log_level": 3,
        }
    )
    deserializer = AvroDeserializer(registry)
    ctx = SerializationContext(topic, MessageField.VALUE)
    points: dict[str, ResumePoint] = {}
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or not meta.partitions:
            return points
        assignments = []
        ends: dict[int, int] = {}
        for partition in meta.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            if high > low:
                ends[partition] = high
                assignments.append(TopicPartition(topic, partition, max(low, high - tail)))
        if not assignments:
            return points
        consumer.assign(assignments)
        _drain(consumer, ends, lambda value: _note(points, deserializer(value, ctx), trade_key))
    finally:
        consumer.close()
    log.info("ingest_resume_points_read", topic=topic, symbols=len(points))
    return points


def _drain(consumer: Consumer, ends: dict[int, int], handle: Callable[[bytes], None]) -> None:
    remaining = dict(ends)
    while remaining:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        partition = msg.partition()
        if msg.error() is not None:
            if msg.error().code() == KafkaError._PARTITION_EOF:
                remaining.pop(partition, None)
            continue
        value = msg.value()
        if value:
            handle(value)
        if msg.offset() + 1 >= remaining.get(partition, 0):
            remaining.pop(partition, None)


def _note(points: dict[str, ResumePoint], record: Any, trade_key: TradeKey) -> None:
    if not isinstance(record, dict):
        return
    symbol = str(record["exchange_symbol"])
    key = trade_key(record)
    received = record["received_us"]
    received_us = received if isinstance(received, int) else _to_micros(received)
    current = points.get(symbol)
    # Without ids (Kraken v1) the newest record is the one at the highest offset, read last.
    if (
        key is None
        or current is None
        or current.last_trade_id is None
        or key > current.last_trade_id
    ):
        points[symbol] = ResumePoint(symbol, key, received_us, record)


def _to_micros(value: Any) -> int:
    from k2.domain import micros_from_datetime  # noqa: PLC0415

    return micros_from_datetime(value)
