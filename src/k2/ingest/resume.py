"""The resume point per symbol, read back from the raw topic itself.

The raw topic is the record of what was delivered: there is no second state store that could
disagree with it. At start-up the ingest reads the tail of every partition (a symbol always lands
in the partition of its key, so its newest records are at the end of one partition), decodes each
record with its own writer schema, and keeps per symbol the highest trade id and the newest
record. The next trade id received from the exchange is then compared with that point to find what
was missed while the ingest was down.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from k2.domain import micros_from_datetime
from k2.errors import TopicError
from k2.transport.offsets import watermarks

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
    symbols: Collection[str],
    tail: int = 2_000,
    max_records: int = 1_000_000,
    timeout_s: float = 30.0,
) -> dict[str, ResumePoint]:
    """Per symbol, the newest delivered record, read from the end of each partition backwards.

    The last ``tail`` records of every partition are read first; while one of ``symbols`` has
    not been seen (a quiet symbol sharing its partition with busy ones), the next older window,
    four times larger, is read, until every symbol is found, the partitions are read to their
    start, or ``max_records`` were read. A symbol still not found then has no resume point: it
    is logged at WARNING, since trades it had while the ingest was down cannot be told apart.
    """
    consumer = Consumer(
        {
            **kafka_config,
            "group.id": "k2-ingest-resume",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    deserializer = AvroDeserializer(registry)
    ctx = SerializationContext(topic, MessageField.VALUE)
    points: dict[str, ResumePoint] = {}
    wanted = set(symbols)
    read = 0
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or not meta.partitions:
            return points
        lows: dict[int, int] = {}
        stops: dict[int, int] = {}
        for partition in meta.partitions:
            low, high = watermarks(consumer, TopicPartition(topic, partition), timeout_s)
            lows[partition], stops[partition] = low, high
        window = tail
        while True:
            ends = {p: stop for p, stop in stops.items() if stop > lows[p]}
            if not ends:
                break
            starts = {p: max(lows[p], stop - window) for p, stop in ends.items()}
            consumer.assign([TopicPartition(topic, p, start) for p, start in starts.items()])
            newer: dict[str, ResumePoint] = {}

            def handle(value: bytes, into: dict[str, ResumePoint] = newer) -> None:
                _note(into, _decoded(deserializer, value, ctx), trade_key)

            read += _drain(consumer, ends, handle, timeout_s)
            _merge_older(points, newer)
            stops.update(starts)
            if wanted <= set(points) or read >= max_records:
                break
            window *= 4
    finally:
        consumer.close()
    missing = sorted(wanted - set(points))
    log.info("ingest_resume_points_read", topic=topic, symbols=len(points), records_read=read)
    if missing and any(stop > lows[p] for p, stop in stops.items()):
        log.warning(
            "ingest_resume_point_not_found",
            topic=topic,
            symbols=missing,
            records_read=read,
            hint="their first trades after start-up are not compared with earlier deliveries",
        )
    return points


def _drain(
    consumer: Consumer, ends: dict[int, int], handle: Callable[[bytes], None], timeout_s: float
) -> int:
    """Read every assigned partition up to its end offset; the number of records read."""
    remaining = dict(ends)
    read = 0
    deadline = time.monotonic() + timeout_s
    while remaining:
        if time.monotonic() > deadline:
            raise TopicError(
                f"could not read the resume point of partitions {sorted(remaining)} within "
                f"{timeout_s:.0f} s; check that the broker is reachable"
            )
        msg = consumer.poll(0.5)
        if msg is None or msg.error() is not None:
            continue
        partition = msg.partition()
        if partition not in remaining or msg.offset() >= remaining[partition]:
            continue  # done, or fetched ahead of this window's end
        value = msg.value()
        if value:
            handle(value)
            read += 1
        deadline = time.monotonic() + timeout_s
        if msg.offset() + 1 >= remaining[partition]:
            remaining.pop(partition)
    return read


def _note(points: dict[str, ResumePoint], record: Any, trade_key: TradeKey) -> None:
    """Keep per symbol the record with the highest id; without ids, the one read last."""
    if not isinstance(record, dict):
        return
    symbol = str(record["exchange_symbol"])
    key = trade_key(record)
    received = record["received_us"]
    received_us = received if isinstance(received, int) else _to_micros(received)
    current = points.get(symbol)
    if (
        key is None
        or current is None
        or current.last_trade_id is None
        or key > current.last_trade_id
    ):
        points[symbol] = ResumePoint(symbol, key, received_us, record)


def _decoded(deserializer: AvroDeserializer, value: bytes, ctx: SerializationContext) -> Any:
    """The record, or None for a value that does not decode (Bronze rejects those)."""
    try:
        return deserializer(value, ctx)
    except (SerializationError, SchemaRegistryError) as exc:
        log.warning("ingest_resume_record_undecodable", error=str(exc).splitlines()[0][:200])
        return None


def _merge_older(points: dict[str, ResumePoint], older: dict[str, ResumePoint]) -> None:
    """Add what an older window found: new symbols, and higher ids (ids can arrive late)."""
    for symbol, point in older.items():
        current = points.get(symbol)
        if current is None or (
            point.last_trade_id is not None
            and current.last_trade_id is not None
            and point.last_trade_id > current.last_trade_id
        ):
            points[symbol] = point


def _to_micros(value: Any) -> int:
    return micros_from_datetime(value)
