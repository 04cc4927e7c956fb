"""Bronze throughput and freshness on this machine, Spark in local mode, with the default settings.

A private stack (Kafka broker and registry) runs in a temporary folder. Two measurements:

- throughput: a topic pre-filled with ``RECORDS`` raw Kraken records (encoded with fastavro in the
  Confluent wire format, as the ingest does) is streamed into a fresh Bronze table; rows/s is the
  records over the time from the query's start to the commit that holds the last of them, and
  per micro-batch over Spark's own batch durations;
- freshness: a producer writes ``RATE`` records/s for ``FRESH_SECONDS``; a record is visible once
  an Iceberg snapshot's offset marker covers its offset (polled through the catalog every 50 ms,
  as a query would see it); freshness is that moment minus the record's Kafka timestamp, p50/p99.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from k2.jobs.bronze_sink import BronzeStream

from bench.services import private_settings
from k2.config import Settings
from k2.ingest.avro import ConfluentEncoder
from k2.jobs.offsets import MARKER, parse_marker
from k2.lake.catalog import ensure_namespaces, open_catalog
from k2.schemas import schema_text
from k2.schemas.registry import register_value_schema
from k2.stack.manager import Stack
from k2.transport.topics import TopicAdmin, TopicSpec

RECORDS = 1_000_000
RATE = 5_000
FRESH_SECONDS = 60.0
PARTITIONS = 6


def _record(i: int) -> dict[str, Any]:
    return {
        "exchange_symbol": ("XBT/USD", "ETH/USD", "SOL/USD", "XDG/USD")[i % 4],
        "price": f"{60000 + i % 5000}.{i % 100000:05d}",
        "side": "buy" if i % 2 else "sell",
        "qty": f"0.{i % 10**8:08d}",
        "ord_type": "limit",
        "trade_id": i,
        "timestamp": "2024-05-01T12:00:00.123456Z",
        "received_us": int(time.time() * 1e6),
        "connection_id": "bench",
        "position": i,
        "protocol": "kraken-v2",
        "occurrence": 0,
        "snapshot": False,
        "message_id": f"kraken:bench:{i}",
        "k2_version": "bench",
    }


def _producer(settings: Settings) -> Producer:
    return Producer(
        {
            **settings.kafka_config(),
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )


def _prefill(settings: Settings, topic: str, encode: ConfluentEncoder, count: int) -> float:
    producer = _producer(settings)
    started = time.perf_counter()
    for i in range(count):
        value = encode.encode(_record(i))
        while True:
            try:
                producer.produce(topic, key=str(i % 64).encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(120)
    return time.perf_counter() - started


def _marker(catalog: Any, identifier: str, topic: str) -> dict[int, int]:
    table = catalog.load_table(identifier)
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return {}
    value = snapshot.summary.additional_properties.get(MARKER)
    return parse_marker(value, topic) if value else {}


def _throughput(spark: Any, settings: Settings, stream: BronzeStream, count: int) -> dict[str, Any]:
    from k2.jobs.bronze import start_stream, stop_between_batches  # noqa: PLC0415

    catalog = open_catalog(settings)
    started = time.perf_counter()
    query = start_stream(spark, settings, stream)
    try:
        while True:
            marker = _marker(catalog, stream.trades, stream.topic)
            if sum(offset + 1 for offset in marker.values()) >= count:
                break
            if not query.isActive:
                raise RuntimeError(f"query stopped: {query.exception()}")
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        deadline = time.perf_counter() + 30
        while sum(p["numInputRows"] for p in query.recentProgress) < count:
            if time.perf_counter() > deadline:
                break
            time.sleep(0.1)  # Spark reports a batch's progress just after its commit
        batches = [p for p in query.recentProgress if p["numInputRows"]]
    finally:
        stop_between_batches(query, 60)
    busy_s = sum(p["batchDuration"] for p in batches) / 1000
    return {
        "records": count,
        "rows_per_s": round(count / elapsed),
        "rows_per_s_in_batches": round(count / busy_s) if busy_s else None,
        "elapsed_s": round(elapsed, 1),
        "batches": len(batches),
        "batch_duration_s": [round(p["batchDuration"] / 1000, 1) for p in batches],
    }


def _freshness(
    spark: Any, settings: Settings, stream: BronzeStream, encode: ConfluentEncoder
) -> dict[str, Any]:
    from k2.jobs.bronze import start_stream, stop_between_batches  # noqa: PLC0415

    produced: list[tuple[int, int, float]] = []  # partition, offset, Kafka timestamp (s)
    stop = threading.Event()

    def delivered(error: Any, message: Any) -> None:
        if error is None:
            produced.append((message.partition(), message.offset(), message.timestamp()[1] / 1000))

    def produce() -> None:
        producer = _producer(settings)
        started = time.perf_counter()
        sent = 0
        while not stop.is_set() and time.perf_counter() - started < FRESH_SECONDS:
            due = int((time.perf_counter() - started) * RATE)
            for i in range(sent, due):
                producer.produce(
                    stream.topic,
                    key=str(i % 64).encode(),
                    value=encode.encode(_record(i)),
                    on_delivery=delivered,
                )
            sent = due
            producer.poll(0.005)
        producer.flush(60)

    catalog = open_catalog(settings)
    query = start_stream(spark, settings, stream)
    visible: list[tuple[float, dict[int, int]]] = []
    thread = threading.Thread(target=produce, name="bench-producer")
    try:
        time.sleep(settings.stream.trigger_interval_s * 2)  # the query is up and idle
        thread.start()
        deadline = time.perf_counter() + FRESH_SECONDS + 60
        while time.perf_counter() < deadline:
            marker = _marker(catalog, stream.trades, stream.topic)
            if not visible or marker != visible[-1][1]:
                visible.append((time.time(), marker))
            if (
                not thread.is_alive()
                and produced
                and all(marker.get(p, -1) >= o for p, o, _ in produced[-100:])
            ):
                break
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
        stop_between_batches(query, 60)
    latencies = sorted(_visible_at(visible, p, o) - ts for p, o, ts in produced)
    return {
        "rate": RATE,
        "records": len(produced),
        "trigger_interval_s": settings.stream.trigger_interval_s,
        "p50_s": round(latencies[len(latencies) // 2], 2),
        "p99_s": round(latencies[int(len(latencies) * 0.99)], 2),
        "max_s": round(latencies[-1], 2),
    }


def _visible_at(visible: list[tuple[float, dict[int, int]]], partition: int, offset: int) -> float:
    for moment, marker in visible:
        if marker.get(partition, -1) >= offset:
            return moment
    return float("inf")


def _stream(settings: Settings, topic: str, name: str) -> BronzeStream:
    return BronzeStream(
        exchange="kraken",
        topic=topic,
        trades=f"bronze.{name}_trades",
        rejects=f"bronze.{name}_rejects",
        checkpoint=settings.stack.state_dir / "checkpoints" / name,
        fallback_schema=schema_text("kraken_raw"),
    )


def run() -> dict[str, Any]:
    from k2.jobs.service import service_settings  # noqa: PLC0415
    from k2.jobs.session import build_session  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="k2-bench-bronze-") as folder:
        settings = service_settings(private_settings(Path(folder)))
        stack = Stack(settings)
        stack.up()
        try:
            topics = {"bulk": "bench.bulk.raw", "fresh": "bench.fresh.raw"}
            TopicAdmin(settings).ensure([TopicSpec(t, PARTITIONS, 1) for t in topics.values()])
            registry = SchemaRegistryClient(settings.registry_config())
            bulk_id = register_value_schema(registry, topics["bulk"], schema_text("kraken_raw"))
            fresh_id = register_value_schema(registry, topics["fresh"], schema_text("kraken_raw"))
            bulk = ConfluentEncoder("kraken_raw", bulk_id)
            prefill_s = _prefill(settings, topics["bulk"], bulk, RECORDS)
            ensure_namespaces(open_catalog(settings))
            spark = build_session(settings, "k2-bench-bronze")
            try:
                result: dict[str, Any] = {
                    "defaults": {
                        "trigger_interval_s": settings.stream.trigger_interval_s,
                        "max_offsets_per_trigger": settings.stream.max_offsets_per_trigger,
                    },
                    "prefill_records_per_s": round(RECORDS / prefill_s),
                    "throughput": _throughput(
                        spark, settings, _stream(settings, topics["bulk"], "bulk"), RECORDS
                    ),
                    "freshness": _freshness(
                        spark,
                        settings,
                        _stream(settings, topics["fresh"], "fresh"),
                        ConfluentEncoder("kraken_raw", fresh_id),
                    ),
                }
            finally:
                spark.stop()
        finally:
            stack.down()
    return result
