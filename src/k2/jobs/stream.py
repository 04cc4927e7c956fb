"""The streaming job: one Structured Streaming query over every raw topic, writing every layer.

One query reads every configured exchange's raw topic and the gap topic, and each micro-batch
goes through Bronze, Silver, Gold and the bars in one ``foreachBatch`` (:mod:`k2.jobs.batch`).
One query rather than one per layer or per exchange: every streaming query pays its own
per-batch overhead (planning, a Kafka poll, a checkpoint write), and a layer that reads the
previous layer's table back would pay a scan and a commit more; here Kafka is read once and
each record decoded once per batch.

Where a run starts: from its checkpoint when there is one (Spark's own resume); without one
(first run, or the folder was lost) from the offsets the Bronze tables record (the start of the
last committed micro-batch per partition; see :mod:`k2.jobs.offsets`), never from earliest or
latest; only a truly first run starts from ``stream.starting_offsets``. Either way every table
skips what it already holds, so every Kafka offset lands in each table once.

:func:`run_stream` is the whole job (session, metrics endpoint, query, restarts, clean stop);
:func:`start_stream` starts the query on a session the caller owns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from confluent_kafka.schema_registry import SchemaRegistryClient

from k2.config import LakeAccess, Settings, StreamSettings
from k2.errors import LeaseLostError
from k2.jobs.batch import BatchReport, BatchWriter
from k2.jobs.bronze.schemas import SchemaResolver, avro_resolution_check
from k2.jobs.bronze.step import BronzeStep
from k2.jobs.gold.bars import BarTables
from k2.jobs.gold.gaps import GoldGaps
from k2.jobs.gold.trades import GoldTrades
from k2.jobs.layout import Layout, layout
from k2.jobs.listener import StreamListener
from k2.jobs.lock import writer_lock
from k2.jobs.offsets import (
    TableProgress,
    checkpoint_has_offsets,
    starting_offsets,
    table_progress,
    topic_partitions,
)
from k2.jobs.service import service_setup
from k2.jobs.session import build_session
from k2.jobs.silver.normalise import exact_decimals
from k2.jobs.silver.step import SilverStep
from k2.jobs.supervisor import Supervisor
from k2.lake.catalog import ensure_namespaces, open_catalog
from k2.observability.metrics import Metrics, StreamMetrics, serve_metrics
from k2.version import git_sha, k2_version

log = structlog.get_logger(__name__)

QUERY_NAME = "k2-stream"


def kafka_source_options(
    conf: Mapping[str, str], stream: StreamSettings, topics: Sequence[str], starting: str
) -> dict[str, str]:
    """Options of Spark's Kafka source for ``topics``, from the client settings ``conf`` every
    Kafka client uses (``Settings.kafka_config()``)."""
    options = {
        "subscribe": ",".join(topics),
        "startingOffsets": starting,
        "maxOffsetsPerTrigger": str(stream.max_offsets_per_trigger),
        "failOnDataLoss": str(stream.fail_on_data_loss).lower(),
        "groupIdPrefix": "k2-stream",
        # Fewer, larger polls: reading Kafka is most of a micro-batch's cost (about 30 % less).
        "kafka.max.poll.records": "20000",
        # The source reads each partition's range after the driver saw it written, so a fetch
        # never needs to wait for data; at the broker's default 500 ms, reading a batch of 200
        # records over 36 partitions took 8-10 s instead of 0.2-0.7 s.
        "kafka.fetch.max.wait.ms": "10",
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


def prepare_tables(
    spark: Any, lake: LakeAccess, registry: Mapping[str, str], plan: Layout
) -> dict[str, SchemaResolver]:
    """Create every table of ``plan`` that is missing; the primed schema resolver per source.

    ``registry`` is the schema registry's client settings (``Settings.registry_config()``).
    """
    exact_decimals(spark)
    ensure_namespaces(open_catalog(lake), plan.prefix)
    client = SchemaRegistryClient(dict(registry))
    resolvers = {}
    for source in plan.sources:
        resolver = SchemaResolver(
            client, source.subject, source.fallback_schema, avro_resolution_check(spark)
        )
        resolver.prime()
        BronzeStep.prepare(spark, source, resolver.plan.reader)
        resolvers[source.name] = resolver
    SilverStep.prepare(spark, plan)
    GoldTrades.prepare(spark, plan.prefix)
    BarTables.prepare(spark, plan.prefix)
    GoldGaps.prepare(spark, plan.prefix)
    return resolvers


def start_stream(
    spark: Any,
    settings: Settings,
    plan: Layout | None = None,
    on_commit: Callable[[BatchReport], None] | None = None,
) -> tuple[Any, BatchWriter]:
    """Start the streaming query on ``spark``; the ``StreamingQuery`` and its batch writer.

    Creates the namespaces and tables if missing, and logs at INFO where the run starts:
    ``stream_resumed_from_checkpoint``, ``stream_resumed_from_table`` (with the offsets) or
    ``stream_started`` (first run).
    """
    plan = plan or layout(settings)
    kafka = settings.kafka_config()
    lake = settings.lake_access()
    stream = settings.stream
    partitions = topic_partitions(kafka, plan.topics)  # exist, or one line
    resolvers = prepare_tables(spark, lake, settings.registry_config(), plan)
    catalog = open_catalog(lake)
    progress = {i: table_progress(spark, catalog, i) for i in plan.marked_tables()}
    starting = _starting(spark, stream, plan, partitions, progress)
    writer = BatchWriter(
        spark, stream, settings.silver, settings.gold, plan, catalog, resolvers, progress, on_commit
    )
    interval_ms = max(1, round(stream.trigger_interval_s * 1000))
    query = (
        spark.readStream.format("kafka")
        .options(**kafka_source_options(kafka, stream, plan.topics, starting))
        .load()
        .writeStream.queryName(QUERY_NAME)
        .foreachBatch(writer)
        .trigger(processingTime=f"{interval_ms} milliseconds")
        .option("checkpointLocation", plan.checkpoint)
        .start()
    )
    return query, writer


def _starting(
    spark: Any,
    stream: StreamSettings,
    plan: Layout,
    partitions: dict[str, list[int]],
    progress: dict[str, TableProgress],
) -> str:
    if checkpoint_has_offsets(spark, plan.checkpoint):
        log.info("stream_resumed_from_checkpoint", checkpoint=plan.checkpoint)
        return "earliest"  # Spark ignores it: the checkpoint's offsets win
    resume = {}
    for source in plan.sources:
        position = progress[source.table]
        if position.settled:
            resume[source.topic] = position.resume.get(source.topic, {})
    if resume:
        starting = starting_offsets(partitions, resume)
        log.info(
            "stream_resumed_from_table",
            reason="no checkpoint",
            checkpoint=plan.checkpoint,
            offsets=starting,
        )
        return starting
    log.info("stream_started", starting_offsets=stream.starting_offsets)
    return stream.starting_offsets


def run_stream(
    settings: Settings,
    exchanges: Sequence[str] | None = None,
    stop_event: threading.Event | None = None,
) -> None:
    """Run the streaming job until ``stop_event`` is set; then stop the query and the session.

    Builds its own Spark session, serves ``/metrics`` on ``stream.metrics_port`` and restarts
    the query when it fails. Blocks the calling thread.
    """
    stop = stop_event or threading.Event()
    plan = layout(settings, tuple(exchanges) if exchanges else None)
    topic_partitions(settings.kafka_config(), plan.topics)  # one line before Spark starts
    spark = build_session(service_setup(settings.spark_setup()), "k2-stream")
    metrics = Metrics("stream")
    listener = StreamListener(StreamMetrics(metrics), QUERY_NAME)
    server = serve_metrics(metrics, settings.stack.host, settings.stream.metrics_port)
    spark.streams.addListener(listener)
    log.info(
        "stream_job_started",
        version=k2_version(),
        git_sha=git_sha(),
        exchanges=list(plan.exchanges),
        metrics_port=server.port,
        trigger_interval_s=settings.stream.trigger_interval_s,
        max_offsets_per_trigger=settings.stream.max_offsets_per_trigger,
    )
    writers: list[BatchWriter] = []

    def start() -> Any:
        query, writer = start_stream(spark, settings, plan, listener.batch_committed)
        writers.append(writer)
        return query

    lost: list[LeaseLostError] = []

    def lease_lost(error: LeaseLostError) -> None:
        lost.append(error)
        stop.set()

    try:
        with writer_lock(
            settings.lake_access(),
            settings.stack.state_dir,
            settings.stream.writer_lease_s,
            plan,
            "k2 job stream",
            lease_lost,
        ):
            supervisor = Supervisor(QUERY_NAME, start, listener.metrics.query_restarts.inc)
            try:
                while not stop.wait(1.0):
                    supervisor.check()
            finally:
                supervisor.stop(settings.stream.trigger_interval_s + 60)
                if writers and not lost:
                    _final_rollup(writers[-1])
    finally:
        spark.streams.removeListener(listener)
        server.stop()
        spark.stop()
        log.info("stream_job_stopped", exchanges=list(plan.exchanges))
    if lost:
        raise lost[0]


def _final_rollup(writer: BatchWriter) -> None:
    """Bring the larger bars up to date before the job ends, so none lag behind its last batch."""
    try:
        writer.rollup()
    except Exception as exc:  # noqa: BLE001 - the next run rolls up from where the tables say
        log.warning("bars_rollup_skipped", error=str(exc).splitlines()[0][:300])
