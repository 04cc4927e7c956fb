"""Bronze for one topic of a micro-batch: every record kept as sent, exactly once.

The micro-batch's raw records (cached once by the pipeline, bytes as read from Kafka) are
summarised by one aggregate over their headers (:func:`header_groups`): the schema ids present
(ids new to the job are resolved with the registry before anything is decoded), the batch's last
offset per partition and the header-level rejects. Then the topic's records are decoded and
cached (:meth:`BronzeStep.decode`): Silver, Gold and the bars read them from there. Once those have
committed, one pass appends them to the topic's table (:meth:`BronzeStep.write`); an observation
on that pass counts the bodies that did not decode. Only when the batch has rejects does a second
pass append them.

The table append is made for every batch that moves the position (even one without records), and
it is the batch's last trade commit, so that table's marker is the job's position for the topic;
the rejects follow. A run without a checkpoint therefore starts at the beginning of the last batch
Bronze committed (the marker before it, kept in the same snapshot): whatever that batch or the one
after it had not committed yet is written then, and what they had is skipped by each table's own
marker (Gold by its ``message_id``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import structlog
from pyspark.sql import Column
from pyspark.sql import functions as sf

from k2.jobs.bronze.decode import (
    ERROR_KINDS,
    INCOMPATIBLE_SCHEMA,
    UNDECODABLE_BODY,
    UNKNOWN_SCHEMA_ID,
    DecodePlan,
    decoded,
    header_error,
)
from k2.jobs.bronze.schemas import SchemaResolver
from k2.jobs.commit import MarkedTable, above
from k2.jobs.kept import kept
from k2.jobs.layout import Source
from k2.jobs.offsets import Offsets, Positions
from k2.lake.tables import bronze_rejects, bronze_trades, ensure_table

log = structlog.get_logger(__name__)

LINEAGE = ("kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "schema_id")


def header_groups(frame: Any, trades: Positions, rejects: Positions) -> list[Any]:
    """One aggregate over a batch's headers, every topic at once: rows per topic, partition,
    schema id, header error kind, and whether they are past the Bronze tables' markers."""
    return list(
        frame.groupBy(
            "kafka_topic",
            "kafka_partition",
            "schema_id",
            header_error().alias("kind"),
            above(trades).alias("fresh_trade"),
            above(rejects).alias("fresh_reject"),
        )
        .agg(sf.count(sf.lit(1)).alias("n"), sf.max("kafka_offset").alias("last"))
        .collect()
    )


@dataclass(frozen=True)
class BatchSummary:
    """What the header aggregate says about one topic, under the current decode plan."""

    rows: int
    last_offsets: Offsets
    fresh_records: int  # rows past the table's marker whose body is to be decoded
    fresh_body_rejects: int  # rows past the rejects marker whose body is to be decoded
    header_rejects: Mapping[str, int]  # rows past the rejects marker rejected by their header


@dataclass
class BronzeResult:
    """What one topic's Bronze step wrote, and its decoded records for the next layers."""

    source: Source
    rows: int = 0
    written: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    records: Any = None  # decoded records (raw fields + lineage), cached; None without rows
    cached: Any = None  # the cached decoded frame, unpersisted by the pipeline
    summary: BatchSummary | None = None  # None: the batch has no record of this topic


class BronzeStep:
    """Bronze of one topic; one instance per query run (it holds the tables' markers)."""

    def __init__(
        self,
        spark: Any,
        catalog: Any,
        source: Source,
        resolver: SchemaResolver,
        settled: tuple[Positions, Positions],
        write_tasks: int,
    ) -> None:
        self._spark = spark
        self.source = source
        self._resolver = resolver
        self.table = MarkedTable(catalog, source.table, [source.topic], settled[0])
        self.rejects = MarkedTable(catalog, source.rejects, [source.topic], settled[1])
        self._write_tasks = write_tasks
        self._table_reader: str | None = None
        self._fields: list[Any] = []
        self._columns: dict[str, tuple[list[Column], list[Column]]] = {}

    @staticmethod
    def prepare(spark: Any, source: Source, reader: str) -> None:
        """Create both tables if missing; give the table the reader schema's columns."""
        ensure_table(spark, bronze_rejects(source.rejects))
        ensure_table(spark, _definition(source, reader))

    def decode(self, frame: Any, groups: Sequence[Any]) -> BronzeResult:
        """This topic's records of ``frame`` (the framed batch, every topic) decoded and cached
        for the next layers; nothing is written yet (:meth:`write` appends them)."""
        result = BronzeResult(self.source)
        mine = [g for g in groups if g.kafka_topic == self.source.topic]
        if not mine:
            return result
        result.summary = self._summarise(mine)
        result.rows = result.summary.rows
        plan = self._resolver.plan
        rows = decoded(frame.where(sf.col("kafka_topic") == self.source.topic), plan)
        result.cached = kept(rows)
        result.records = result.cached.where(sf.col("error_kind").isNull()).select(
            *self._columns_of(plan.reader)[0]
        )
        return result

    def write(self, result: BronzeResult) -> None:
        """Append the decoded records of :meth:`decode` to the table, then the rejects."""
        summary = result.summary
        if summary is None:
            return
        written, undecodable = self._append_records(result.cached, summary)
        result.written = written
        if summary.header_rejects or undecodable:
            result.rejects = self._append_rejects(result.cached, summary, undecodable)

    def _summarise(self, groups: Sequence[Any]) -> BatchSummary:
        ids = {g.schema_id for g in groups if g.kind is None}
        if ids - self._resolver.plan.known():
            self._resolver.learn(ids)
        plan = self._resolver.plan
        self._fit_table(plan.reader)
        last: Offsets = {}
        header: Counter[str] = Counter()
        fresh_records = fresh_body_rejects = 0
        for g in groups:
            last[g.kafka_partition] = max(g.last, last.get(g.kafka_partition, -1))
            kind = g.kind or _id_error(g.schema_id, plan)
            if kind is None:
                fresh_records += g.n if g.fresh_trade else 0
                fresh_body_rejects += g.n if g.fresh_reject else 0
            elif g.fresh_reject:
                header[kind] += g.n
        rows = sum(g.n for g in groups)
        return BatchSummary(rows, last, fresh_records, fresh_body_rejects, header)

    def _append_records(self, rows: Any, summary: BatchSummary) -> tuple[int, int]:
        """Append the batch's new records; (rows written, undecodable bodies for the rejects).

        Skipped when the batch neither has new records nor moves the marker (a replay of a batch
        already committed); the undecodable bodies are then left to the rejects pass to find.
        """
        batch = {self.source.topic: summary.last_offsets}
        if summary.fresh_records == 0 and not self.table.moves(batch):
            return 0, summary.fresh_body_rejects
        fresh_reject = self.rejects.fresh()
        counts = self.table.append(
            rows.where(self.table.fresh() | fresh_reject),
            batch,
            keep=sf.col("error_kind").isNull(),
            counts={"bad": sf.count_if((sf.col("error_kind") == UNDECODABLE_BODY) & fresh_reject)},
            columns=self._columns_of(self._resolver.plan.reader)[1],
            files=self._write_tasks,
        )
        if counts is None:  # it landed although its commit reported a failure
            return summary.fresh_records, summary.fresh_body_rejects
        return counts["rows"], counts["bad"]

    def _append_rejects(self, rows: Any, summary: BatchSummary, undecodable: int) -> dict[str, int]:
        """Append the batch's new rejects; their number per kind."""
        columns = [
            sf.current_timestamp().alias(name) if name == "bronze_written_at" else sf.col(name)
            for name in bronze_rejects(self.source.rejects).column_names()
        ]
        counts = self.rejects.append(
            rows.where(sf.col("error_kind").isNotNull()),
            {self.source.topic: summary.last_offsets},
            counts={kind: sf.count_if(sf.col("error_kind") == kind) for kind in ERROR_KINDS},
            columns=columns,
            files=1,
        )
        if counts is None:
            counts = {**summary.header_rejects, UNDECODABLE_BODY: undecodable}
        return {kind: n for kind, n in counts.items() if kind in ERROR_KINDS and n}

    def _columns_of(self, reader: str) -> tuple[list[Column], list[Column]]:
        """The decoded record's columns (:meth:`_record_columns`) and the table's
        (:meth:`_table_columns`) under ``reader``, built once: each column costs a call into
        the JVM, which every micro-batch would otherwise pay again."""
        if reader not in self._columns:
            self._fit_table(reader)
            self._columns = {reader: (self._record_columns(reader), self._table_columns(reader))}
        return self._columns[reader]

    def _table_columns(self, reader: str) -> list[Column]:
        """Every column of the topic's table, in its order, from the decoded record."""
        record = _field_names(reader)
        columns = []
        for spec in self._fields:
            if spec.name in LINEAGE:
                columns.append(sf.col(spec.name))
            elif spec.name == "bronze_written_at":
                columns.append(sf.current_timestamp().alias(spec.name))
            elif spec.name in record:
                columns.append(sf.col(f"record.`{spec.name}`").alias(spec.name))
            else:  # a field the current reader schema no longer has
                columns.append(sf.lit(None).cast(spec.dataType).alias(spec.name))
        return columns

    def _record_columns(self, reader: str) -> list[Column]:
        """The decoded record's fields and the lineage: a Bronze row, as the next layers read
        it (from the stream, or from the table when rebuilding)."""
        names = [f["name"] for f in _schema(reader)["fields"]]
        return [*(sf.col(f"record.`{n}`").alias(n) for n in names), *map(sf.col, LINEAGE)]

    def _fit_table(self, reader: str) -> None:
        if reader == self._table_reader:
            return
        definition = _definition(self.source, reader)
        added = ensure_table(self._spark, definition)
        if added:
            log.info("bronze_columns_added", table=self.source.table, columns=added)
        self._fields = list(self._spark.table(definition.qualified).schema.fields)
        self._table_reader = reader


def _definition(source: Source, reader: str) -> Any:
    return bronze_trades(source.table, _schema(reader), source.partition_source)


def _id_error(schema_id: int, plan: DecodePlan) -> str | None:
    """The error kind of a schema id under ``plan``, or None when its bodies are decoded."""
    if schema_id in plan.writers:
        return None
    return INCOMPATIBLE_SCHEMA if schema_id in plan.refused else UNKNOWN_SCHEMA_ID


@lru_cache(maxsize=32)
def _schema(reader: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(reader)
    return parsed


def _field_names(reader: str) -> frozenset[str]:
    return frozenset(f["name"] for f in _schema(reader)["fields"])
