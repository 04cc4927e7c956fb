"""The Bronze job: every record of the raw Kafka topics into Iceberg, exactly once, kept as sent.

One Structured Streaming query per exchange reads ``market.crypto.trades.<exchange>.raw`` and
appends to ``k2.bronze.<exchange>_trades`` (every raw field, the Kafka lineage, the writer schema
id and the commit time) and ``k2.bronze.<exchange>_rejects`` (records that cannot be decoded, byte
for byte, with the reason). One query per exchange, not one for all topics: each has its own
checkpoint, tables, trigger and failure, so a problem with one venue's data never holds up the
other's, and each query's micro-batch touches exactly one pair of tables.

Where a run starts: from its checkpoint when there is one (Spark's own resume); without one (first
run, or the folder was lost) from the offsets the Bronze tables record (the start of the last
committed micro-batch per partition; see :mod:`k2.jobs.offsets`), never from earliest or latest;
only a truly first run starts from ``bronze.starting_offsets``. Either way the writer skips rows
its tables already hold (:mod:`k2.jobs.bronze_sink`), so every Kafka offset lands in Bronze once.

:func:`run_bronze` is the whole job (session, metrics endpoint, queries, restarts, clean stop);
:func:`start_bronze` starts the queries on a session the caller owns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from confluent_kafka.schema_registry import SchemaRegistryClient

from k2.config import Settings
from k2.jobs.bronze_sink import BronzeSink, BronzeStream
from k2.jobs.listener import BronzeListener
from k2.jobs.offsets import (
    TableProgress,
    checkpoint_has_offsets,
    starting_offsets,
    table_progress,
    topic_partitions,
)
from k2.jobs.schemas import SchemaResolver, avro_resolution_check
from k2.lake.catalog import ensure_namespaces, open_catalog
from k2.schemas import raw_schema_name, schema_text
from k2.transport.topics import raw_topic
from k2.version import git_sha, k2_version

log = structlog.get_logger(__name__)

__all__ = [
    "BronzeStream",
    "bronze_stream",
    "run_bronze",
    "start_bronze",
    "start_stream",
    "stop_between_batches",
]

_RESTART_BACKOFF_S = (5.0, 60.0)


def checkpoint_root(settings: Settings) -> Path:
    """The folder holding one checkpoint per exchange."""
    return settings.stream.checkpoint_dir or settings.stack.state_dir / "checkpoints" / "stream"


def bronze_stream(settings: Settings, exchange: str) -> BronzeStream:
    """The configured stream of ``exchange``: its raw topic, tables and checkpoint."""
    return BronzeStream(
        exchange=exchange,
        topic=raw_topic(exchange, settings.kafka.topic_prefix),
        trades=f"bronze.{exchange}_trades",
        rejects=f"bronze.{exchange}_rejects",
        checkpoint=checkpoint_root(settings) / exchange,
        fallback_schema=schema_text(raw_schema_name(exchange)),
    )


def kafka_source_options(settings: Settings, topic: str, starting: str) -> dict[str, str]:
    """Options of Spark's Kafka source for ``topic``, from the same settings as every client."""
    conf = settings.kafka_config()
    stream = settings.stream
    options = {
        "subscribe": topic,
        "startingOffsets": starting,
        "maxOffsetsPerTrigger": str(stream.max_offsets_per_trigger),
        "failOnDataLoss": str(stream.fail_on_data_loss).lower(),
        "groupIdPrefix": "k2-bronze",
        # Fewer, larger polls: reading Kafka is most of a micro-batch's cost (about 30 % less).
        "kafka.max.poll.records": "20000",
        "kafka.bootstrap.servers": conf["bootstrap.servers"],
        "kafka.security.protocol": conf["security.protocol"],
    }
    mechanism = conf.get("sasl.mechanism")
    if mechanism:
        options["kafka.sasl.mechanism"] = mechanism
        module = (
            "org.apache.kafka.common.security.scram.ScramLoginModule"
            if mechanism.startswith("SCRAM")
            else "org.apache.kafka.common.security.plain.PlainLoginModule"
        )
        user = conf.get("sasl.username", "").replace('"', '\\"')
        password = conf.get("sasl.password", "").replace('"', '\\"')
        options["kafka.sasl.jaas.config"] = (
            f'{module} required username="{user}" password="{password}";'
        )
    if "ssl.ca.location" in conf:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = conf["ssl.ca.location"]
    return options


def start_stream(
    spark: Any,
    settings: Settings,
    stream: BronzeStream,
    listener: BronzeListener | None = None,
) -> Any:
    """Start one exchange's streaming query on ``spark``; returns the ``StreamingQuery``.

    Creates the Bronze namespace and tables if missing, and logs at INFO where the run starts:
    ``bronze_resumed_from_checkpoint``, ``bronze_resumed_from_table`` (with the offsets) or
    ``bronze_started`` (first run).
    """
    partitions = topic_partitions(settings.kafka_config(), stream.topic)  # exists, or one line
    catalog = open_catalog(settings)
    ensure_namespaces(catalog)
    resolver = SchemaResolver(
        SchemaRegistryClient(settings.registry_config()),
        stream.subject,
        stream.fallback_schema,
        avro_resolution_check(spark),
    )
    resolver.prime()
    BronzeSink.prepare(spark, stream, resolver.plan.reader)
    trades = table_progress(spark, catalog, stream.trades, stream.topic)
    rejects = table_progress(spark, catalog, stream.rejects, stream.topic)
    starting = _starting(settings, stream, partitions, (trades, rejects))
    sink = BronzeSink(
        spark,
        stream,
        resolver,
        (trades.settled, rejects.settled),
        settings.stream.write_tasks or int(spark.sparkContext.defaultParallelism),
        catalog,
        on_commit=listener.batch_committed if listener is not None else None,
    )
    if listener is not None:
        listener.watch(stream.name, stream.exchange)
    interval_ms = max(1, round(settings.stream.trigger_interval_s * 1000))
    return (
        spark.readStream.format("kafka")
        .options(**kafka_source_options(settings, stream.topic, starting))
        .load()
        .writeStream.queryName(stream.name)
        .foreachBatch(sink)
        .trigger(processingTime=f"{interval_ms} milliseconds")
        .option("checkpointLocation", str(stream.checkpoint))
        .start()
    )


def _starting(
    settings: Settings,
    stream: BronzeStream,
    partitions: list[int],
    progress: tuple[TableProgress, TableProgress],
) -> str:
    trades, rejects = progress
    context = {"exchange": stream.exchange, "topic": stream.topic}
    if checkpoint_has_offsets(stream.checkpoint):
        log.info("bronze_resumed_from_checkpoint", checkpoint=str(stream.checkpoint), **context)
        return "earliest"  # Spark ignores it: the checkpoint's offsets win
    if trades.settled or rejects.settled:
        starting = starting_offsets(stream.topic, partitions, trades.resume)
        log.info(
            "bronze_resumed_from_table",
            reason="no checkpoint",
            checkpoint=str(stream.checkpoint),
            offsets=starting,
            **context,
        )
        return starting
    log.info("bronze_started", starting_offsets=settings.stream.starting_offsets, **context)
    return settings.stream.starting_offsets


def start_bronze(
    spark: Any,
    settings: Settings,
    exchanges: Sequence[str] | None = None,
    listener: BronzeListener | None = None,
) -> list[Any]:
    """Start the Bronze query of each exchange (default: the configured ones) on ``spark``.

    The caller owns the session and the queries: stop them with :func:`stop_between_batches`
    (or ``query.stop()``). Give a ``listener`` (registered with ``spark.streams.addListener``)
    to feed Prometheus.
    """
    return [
        start_stream(spark, settings, bronze_stream(settings, exchange), listener)
        for exchange in (exchanges or settings.exchanges)
    ]


@dataclass
class _Supervised:
    stream: BronzeStream
    query: Any
    failures: int = 0
    restart_at: float | None = None


def run_bronze(
    settings: Settings,
    exchanges: Sequence[str] | None = None,
    stop_event: threading.Event | None = None,
) -> None:
    """Run the Bronze job until ``stop_event`` is set; then stop every query and the session.

    Builds its own Spark session, serves ``/metrics`` on ``bronze.metrics_port`` and restarts a
    query that failed (after 5 s, doubling to 60 s while it keeps failing), which resumes exactly
    where its checkpoint and tables say. Blocks the calling thread.
    """
    from k2.jobs.service import service_settings  # noqa: PLC0415
    from k2.jobs.session import build_session  # noqa: PLC0415
    from k2.observability.metrics import BronzeMetrics, Metrics, serve_metrics  # noqa: PLC0415

    stop = stop_event or threading.Event()
    names = list(exchanges or settings.exchanges)
    for name in names:  # a missing topic or an unreachable broker is one line, before Spark starts
        topic_partitions(settings.kafka_config(), raw_topic(name, settings.kafka.topic_prefix))
    spark = build_session(service_settings(settings), "k2-bronze")
    metrics = Metrics("bronze")
    listener = BronzeListener(BronzeMetrics(metrics))
    server = serve_metrics(metrics, settings.stack.host, settings.stream.metrics_port)
    spark.streams.addListener(listener)
    log.info(
        "bronze_job_started",
        version=k2_version(),
        git_sha=git_sha(),
        exchanges=names,
        metrics_port=server.port,
        trigger_interval_s=settings.stream.trigger_interval_s,
        max_offsets_per_trigger=settings.stream.max_offsets_per_trigger,
    )
    running: list[_Supervised] = []
    try:
        for name in names:
            stream = bronze_stream(settings, name)
            running.append(_Supervised(stream, start_stream(spark, settings, stream, listener)))
        while not stop.wait(1.0):
            for item in running:
                _supervise(item, spark, settings, listener)
    finally:
        for item in running:
            if item.query is not None:
                stop_between_batches(item.query, settings.stream.trigger_interval_s + 60)
        spark.streams.removeListener(listener)
        server.stop()
        spark.stop()
        log.info("bronze_job_stopped", exchanges=names)


def stop_between_batches(query: Any, timeout_s: float) -> None:
    """Stop ``query``, waiting up to ``timeout_s`` for a running micro-batch to commit first.

    Stopping mid-batch is safe (the batch is replayed and written once) but wastes its work.
    """
    deadline = time.monotonic() + timeout_s
    while query.isActive and query.status["isTriggerActive"] and time.monotonic() < deadline:
        time.sleep(0.1)
    query.stop()


def _supervise(item: _Supervised, spark: Any, settings: Settings, listener: BronzeListener) -> None:
    """Restart a failed query once its back-off has passed."""
    if item.query is not None and item.query.isActive:
        if item.failures and item.query.lastProgress is not None:
            item.failures = 0  # it runs again
        return
    now = time.monotonic()
    if item.restart_at is None:
        error = item.query.exception() if item.query is not None else None
        item.failures += 1
        first, cap = _RESTART_BACKOFF_S
        delay = min(cap, first * 2 ** (item.failures - 1))
        item.restart_at = now + delay
        item.query = None
        log.error(
            "bronze_query_failed",
            exchange=item.stream.exchange,
            error=str(error).splitlines()[0][:500] if error is not None else "stopped",
            restart_in_s=delay,
        )
        return
    if now < item.restart_at:
        return
    listener.metrics.query_restarts.labels(item.stream.exchange).inc()
    try:
        item.query = start_stream(spark, settings, item.stream, listener)
        item.restart_at = None
    except Exception as exc:  # a supervisor outlives whatever the restart hits; it retries
        item.failures += 1
        delay = min(_RESTART_BACKOFF_S[1], _RESTART_BACKOFF_S[0] * 2 ** (item.failures - 1))
        item.restart_at = now + delay
        log.error(
            "bronze_query_restart_failed",
            exchange=item.stream.exchange,
            error=str(exc).splitlines()[0][:500],
            restart_in_s=delay,
        )
