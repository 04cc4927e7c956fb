"""One Bronze micro-batch into Iceberg, idempotently: the ``foreachBatch`` function of a stream.

The micro-batch's raw records are cached once (bytes, as read from Kafka). A small aggregate over
their headers gives the schema ids present (ids new to the job are resolved with the registry
before anything is decoded), the batch's last offset per partition and the header-level rejects.
Then one pass decodes every record and appends the trades; an observation on that pass counts the
bodies that did not decode. Only when the batch has rejects does a second pass over the cache
append them. Reading Kafka once and decoding once keeps Bronze near the cost of a single scan.

Exactly once. Spark replays a micro-batch whose commit it did not record (the driver died after
writing, before its checkpoint said so), and a run without a checkpoint starts wherever it is
told. So each append carries in its snapshot summary the cumulative last offset per partition
whose fate that table has settled (:mod:`k2.jobs.offsets`), and writes only rows above its own
table's marker: a replay writes nothing twice, and nothing is ever rewritten. The check costs
nothing per batch: the markers are read from the tables when a run starts and then advanced in
memory, since one job writes each exchange's tables.

The trades append comes first and is made for every batch that moves the position (even one
without trades), so the trades table's marker is the job's position; the rejects follow. A run
without a checkpoint therefore starts at the beginning of the last committed batch (the marker
before it, kept in the same snapshot): if the driver died between the two appends, that batch's
rejects are appended then, and its trades are skipped as already settled.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import structlog
from pyspark import StorageLevel
from pyspark.sql import Observation
from pyspark.sql import functions as sf

from k2.jobs.decode import (
    ERROR_KINDS,
    INCOMPATIBLE_SCHEMA,
    UNDECODABLE_BODY,
    UNKNOWN_SCHEMA_ID,
    DecodePlan,
    decoded,
    framed,
    header_error,
)
from k2.jobs.offsets import MARKER, PREVIOUS, Offsets, marker_offsets, marker_value, merged
from k2.jobs.schemas import SchemaResolver
from k2.jobs.session import renew_sqlite_catalog_connections
from k2.lake.commits import is_commit_conflict
from k2.lake.tables import bronze_rejects, bronze_trades, ensure_table

log = structlog.get_logger(__name__)

T = TypeVar("T")
_COMMIT_ATTEMPTS = 6
_INTERRUPTED = re.compile(
    r"InterruptedException|InterruptedIOException|ClosedByInterruptException|SPARK_JOB_CANCELLED"
)
_INTERRUPTED_MESSAGE = (
    "py4j.protocol.Py4JJavaError: An error occurred while calling the Bronze writer: "
    "java.lang.InterruptedException (the query was stopped)"
)


class BatchInterruptedError(Exception):
    """Raised when ``query.stop()`` interrupts a micro-batch; it is replayed on the next run."""


@dataclass(frozen=True)
class BronzeStream:
    """One exchange's Bronze stream: its topic, registry subject, tables and checkpoint."""

    exchange: str
    topic: str
    trades: str  # identifier "bronze.<exchange>_trades"
    rejects: str
    checkpoint: Path
    fallback_schema: str  # the packaged raw schema, used before any version is registered

    @property
    def subject(self) -> str:
        return f"{self.topic}-value"

    @property
    def name(self) -> str:
        """The streaming query's name, unique per session."""
        return f"bronze:{self.trades}"


@dataclass(frozen=True)
class BatchSummary:
    """What the aggregate over a micro-batch's headers says, under the current decode plan."""

    rows: int
    last_offsets: Offsets
    fresh_trades: int  # rows past the trades marker whose body is to be decoded
    fresh_body_rejects: int  # rows past the rejects marker whose body is to be decoded
    header_rejects: Mapping[str, int]  # rows past the rejects marker rejected by their header


@dataclass
class BatchResult:
    """What one micro-batch wrote; handed to the metrics and logged."""

    exchange: str
    batch_id: int
    rows: int
    written: int
    rejects: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    last_offsets: Offsets = field(default_factory=dict)


class BronzeSink:
    """The ``foreachBatch`` function of one stream; one instance per query run.

    ``settled`` holds the trades and the rejects tables' markers when the run started;
    ``catalog`` is the pyiceberg catalog, to read a table back after a failed commit.
    """

    def __init__(
        self,
        spark: Any,
        stream: BronzeStream,
        resolver: SchemaResolver,
        settled: tuple[Offsets, Offsets],
        write_tasks: int,
        catalog: Any,
        on_commit: Callable[[BatchResult], None] | None = None,
    ) -> None:
        self._spark = spark
        self._catalog = catalog
        self._stream = stream
        self._resolver = resolver
        self._trades_settled, self._rejects_settled = settled
        self._write_tasks = write_tasks
        self._on_commit = on_commit
        self._table_reader: str | None = None
        self._trade_fields: list[Any] = []
        self._stream_session_ready = False

    @staticmethod
    def prepare(spark: Any, stream: BronzeStream, reader: str) -> None:
        """Create both tables if missing; give the trades table the reader schema's columns."""
        ensure_table(spark, bronze_rejects(stream.rejects))
        ensure_table(spark, bronze_trades(stream.trades, _schema(reader)))

    def __call__(self, batch: Any, batch_id: int) -> None:
        try:
            self._write_batch(batch, batch_id)
        except Exception as exc:
            if _INTERRUPTED.search(str(exc)):
                # query.stop() interrupted the batch (it is replayed on the next run). Spark tells
                # a stop from a failure by matching this text with a backtracking regex that
                # overflows the stack on a long Java trace, so the trace is left out of it.
                log.info(
                    "bronze_batch_interrupted",
                    exchange=self._stream.exchange,
                    batch_id=batch_id,
                    error=str(exc).splitlines()[0][:300],
                )
                raise BatchInterruptedError(_INTERRUPTED_MESSAGE) from None
            raise

    def _write_batch(self, batch: Any, batch_id: int) -> None:
        started = time.monotonic()
        if not self._stream_session_ready:
            # Spark runs the query in a clone of the session with its own catalog instance.
            renew_sqlite_catalog_connections(batch.sparkSession)
            self._stream_session_ready = True
        frame = framed(batch).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            summary = self._summarise(frame)
            if summary.rows == 0:
                return
            rows = decoded(frame, self._resolver.plan)
            written, undecodable = self._append_trades(rows, summary)
            rejects = {}
            if summary.header_rejects or undecodable:
                rejects = self._append_rejects(rows, summary, undecodable)
        finally:
            frame.unpersist()
        self._committed(batch_id, summary, written, rejects, time.monotonic() - started)

    def _summarise(self, frame: Any) -> BatchSummary:
        """Aggregate the headers; learn new schema ids; fit the table to the reader schema."""
        groups = (
            frame.groupBy(
                "kafka_partition",
                "schema_id",
                header_error().alias("kind"),
                _above(self._trades_settled).alias("fresh_trade"),
                _above(self._rejects_settled).alias("fresh_reject"),
            )
            .agg(sf.count(sf.lit(1)).alias("n"), sf.max("kafka_offset").alias("last"))
            .collect()
        )
        ids = {g.schema_id for g in groups if g.kind is None}
        if ids - self._resolver.plan.known():
            self._resolver.learn(ids)
        plan = self._resolver.plan
        self._fit_trades_table(plan.reader)
        last: Offsets = {}
        header: Counter[str] = Counter()
        fresh_trades = fresh_body_rejects = 0
        for g in groups:
            last[g.kafka_partition] = max(g.last, last.get(g.kafka_partition, -1))
            kind = g.kind or _id_error(g.schema_id, plan)
            if kind is None:
                fresh_trades += g.n if g.fresh_trade else 0
                fresh_body_rejects += g.n if g.fresh_reject else 0
            elif g.fresh_reject:
                header[kind] += g.n
        rows = sum(g.n for g in groups)
        return BatchSummary(rows, last, fresh_trades, fresh_body_rejects, header)

    def _append_trades(self, rows: Any, summary: BatchSummary) -> tuple[int, int]:
        """Append the batch's new trades; (rows written, undecodable bodies for the rejects).

        Skipped when the batch neither has new trades nor moves the marker (a replay of a batch
        already committed); the undecodable bodies are then left to the rejects pass to find.
        """
        settled = merged(self._trades_settled, summary.last_offsets)
        if summary.fresh_trades == 0 and settled == self._trades_settled:
            return 0, summary.fresh_body_rejects
        fresh_trade = _above(self._trades_settled)
        fresh_reject = _above(self._rejects_settled)
        properties = {MARKER: self._marker(settled), PREVIOUS: self._marker(self._trades_settled)}

        def write() -> tuple[int, int]:
            observed = Observation(f"bronze-{uuid.uuid4().hex}")
            counted = rows.where(fresh_trade | fresh_reject).observe(
                observed,
                sf.count_if(sf.col("error_kind").isNull() & fresh_trade).alias("written"),
                sf.count_if((sf.col("error_kind") == UNDECODABLE_BODY) & fresh_reject).alias("bad"),
            )
            frame = counted.where(sf.col("error_kind").isNull() & fresh_trade)
            columns = self._trade_columns()
            _append(
                frame.select(*columns).coalesce(self._write_tasks), self._stream.trades, properties
            )
            return int(observed.get["written"]), int(observed.get["bad"])

        counts = self._with_retries(self._stream.trades, settled, write)
        self._trades_settled = settled
        return counts or (summary.fresh_trades, summary.fresh_body_rejects)

    def _append_rejects(self, rows: Any, summary: BatchSummary, undecodable: int) -> dict[str, int]:
        """Append the batch's new rejects; their number per kind."""
        settled = merged(self._rejects_settled, summary.last_offsets)
        rejected = rows.where(sf.col("error_kind").isNotNull() & _above(self._rejects_settled))
        columns = bronze_rejects(self._stream.rejects).column_names()
        properties = {MARKER: self._marker(settled)}

        def write() -> dict[str, int]:
            observed = Observation(f"bronze-{uuid.uuid4().hex}")
            kinds = [sf.count_if(sf.col("error_kind") == k).alias(k) for k in ERROR_KINDS]
            frame = rejected.observe(observed, *kinds).withColumn(
                "bronze_written_at", sf.current_timestamp()
            )
            _append(frame.select(*columns).coalesce(1), self._stream.rejects, properties)
            return {kind: int(n) for kind, n in observed.get.items() if n}

        counts = self._with_retries(self._stream.rejects, settled, write)
        self._rejects_settled = settled
        if counts is None:  # it landed although its commit reported a failure
            counts = {**summary.header_rejects, UNDECODABLE_BODY: undecodable}
        return {kind: n for kind, n in counts.items() if n}

    def _with_retries(self, identifier: str, settled: Offsets, write: Callable[[], T]) -> T | None:
        """Run ``write`` (one append whose marker is ``settled``) until it commits.

        A commit that lost a race with another writer of the catalog (maintenance, pyiceberg)
        is retried. A commit reported as failed may still have landed, so the table is read back
        first: if its newest marker is this append's, the append is not repeated (None).
        """
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            try:
                return write()
            except Exception as exc:  # Spark wraps the JVM's exception; its text says which
                if not is_commit_conflict(exc) or attempt == _COMMIT_ATTEMPTS:
                    raise
                landed = marker_offsets(self._catalog.load_table(identifier), self._stream.topic)
                if landed is not None and landed.settled == settled:
                    return None
                log.warning(
                    "bronze_commit_retried",
                    table=identifier,
                    attempt=attempt,
                    error=str(exc).splitlines()[0][:300],
                )
                time.sleep(min(2.0, 0.1 * 2**attempt))
        return None

    def _committed(
        self,
        batch_id: int,
        summary: BatchSummary,
        written: int,
        rejects: dict[str, int],
        took: float,
    ) -> None:
        result = BatchResult(
            self._stream.exchange,
            batch_id,
            summary.rows,
            written,
            rejects,
            took,
            summary.last_offsets,
        )
        log.info(
            "bronze_batch_committed",
            exchange=result.exchange,
            table=self._stream.trades,
            batch_id=batch_id,
            rows=result.rows,
            written=written,
            rejects=sum(rejects.values()),
            duration_s=round(took, 3),
        )
        if self._on_commit is not None:
            self._on_commit(result)

    def _trade_columns(self) -> list[Any]:
        """Every column of the trades table, in its order, from the decoded record."""
        record = _field_names(self._resolver.plan.reader)
        lineage = {"kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "schema_id"}
        columns = []
        for spec in self._trade_fields:
            if spec.name in lineage:
                columns.append(sf.col(spec.name))
            elif spec.name == "bronze_written_at":
                columns.append(sf.current_timestamp().alias(spec.name))
            elif spec.name in record:
                columns.append(sf.col(f"record.`{spec.name}`").alias(spec.name))
            else:  # a field the current reader schema no longer has
                columns.append(sf.lit(None).cast(spec.dataType).alias(spec.name))
        return columns

    def _fit_trades_table(self, reader: str) -> None:
        if reader == self._table_reader:
            return
        definition = bronze_trades(self._stream.trades, _schema(reader))
        added = ensure_table(self._spark, definition)
        if added:
            log.info("bronze_columns_added", table=self._stream.trades, columns=added)
        self._trade_fields = list(self._spark.table(definition.qualified).schema.fields)
        self._table_reader = reader

    def _marker(self, settled: Offsets) -> str:
        return marker_value(self._stream.topic, settled)


def _append(frame: Any, identifier: str, properties: Mapping[str, str]) -> None:
    writer = frame.writeTo(f"k2.{identifier}")
    for key, value in properties.items():
        writer = writer.option(f"snapshot-property.{key}", value)
    writer.append()


def _id_error(schema_id: int, plan: DecodePlan) -> str | None:
    """The error kind of a schema id under ``plan``, or None when its bodies are decoded."""
    if schema_id in plan.writers:
        return None
    return INCOMPATIBLE_SCHEMA if schema_id in plan.refused else UNKNOWN_SCHEMA_ID


def _above(settled: Offsets) -> Any:
    """True for rows past the settled offset of their partition."""
    if not settled:
        return sf.lit(True)
    (first, first_offset), *rest = sorted(settled.items())
    partition = sf.col("kafka_partition")
    bound = sf.when(partition == first, sf.lit(first_offset))
    for number, offset in rest:
        bound = bound.when(partition == number, sf.lit(offset))
    return sf.col("kafka_offset") > bound.otherwise(sf.lit(-1))


@lru_cache(maxsize=32)
def _schema(reader: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(reader)
    return parsed


def _field_names(reader: str) -> frozenset[str]:
    return frozenset(f["name"] for f in _schema(reader)["fields"])
