"""One micro-batch through every layer: the ``foreachBatch`` function of the streaming job.

The batch's raw records are read from Kafka once and cached; one aggregate over their headers
plans the batch (schema ids, last offsets, header rejects). Each topic's records are decoded by
their writer schema and the trades of every exchange normalised and validated, once, both cached.
Then the commits, the ones users wait for first:

1. **Gold**: the batch's valid trades not yet in ``gold.trades`` appended (one row per trade);
2. **bars**: the 1-minute bars holding the batch's trades recomputed and stored when changed
   (the moment the batch is visible to users: :attr:`BatchReport.visible_at`);
3. **Silver**: valid trades appended per exchange, the levels of the book records to
   ``silver.book_changes``, invalid ones to the quarantine;
4. **Bronze**, per topic (trades, books, gaps): the records appended as sent; rejects;
5. **gaps**: the batch's gap events appended to ``gold.gaps``; the larger bars rolled up every
   ``GoldSettings.rollup_interval_s``.

Each table's write is exactly once on its own: appends carry their table's Kafka offsets in
their snapshot (a replayed batch is skipped table by table), Gold's append only adds trades it
lacks, and the bars are recomputed from Gold and written only when they change. So a driver
killed between any two of these commits leaves nothing half done: the batch is replayed (from
the checkpoint, or from Bronze's offsets without one: Bronze commits last, so its position never
runs ahead of another table's) and each table takes exactly what it is missing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from k2.config import GoldSettings, SilverSettings, StreamSettings
from k2.jobs.bronze.decode import framed
from k2.jobs.bronze.schemas import SchemaResolver
from k2.jobs.bronze.step import BronzeStep, header_groups
from k2.jobs.gold.bars import BarChanges, BarTables
from k2.jobs.gold.gaps import GoldGaps
from k2.jobs.gold.trades import GoldResult, GoldTrades, minutes_of
from k2.jobs.kept import kept, release
from k2.jobs.layout import GAPS, Layout
from k2.jobs.offsets import Positions, TableProgress, merged
from k2.jobs.session import renew_sqlite_catalog_connections
from k2.jobs.silver.step import SilverResult, SilverStep

log = structlog.get_logger(__name__)

_INTERRUPTED = re.compile(
    r"InterruptedException|InterruptedIOException|ClosedByInterruptException|SPARK_JOB_CANCELLED"
)
_INTERRUPTED_MESSAGE = (
    "py4j.protocol.Py4JJavaError: An error occurred while calling the stream writer: "
    "java.lang.InterruptedException (the query was stopped)"
)


class BatchInterruptedError(Exception):
    """Raised when ``query.stop()`` interrupts a micro-batch; it is replayed on the next run."""


@dataclass
class BatchReport:
    """What one micro-batch wrote to every layer; logged once and handed to the metrics."""

    batch_id: int
    rows: int = 0
    bronze: dict[str, int] = field(default_factory=dict)  # source -> records appended
    rejects: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> kind -> n
    silver: SilverResult = field(default_factory=SilverResult)
    gold: GoldResult = field(default_factory=GoldResult)
    bars: list[BarChanges] = field(default_factory=list)
    gaps: dict[str, int] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds
    duration_s: float = 0.0
    visible_at: float | None = None  # epoch seconds: Gold and its 1-minute bars committed
    last_offsets: Positions = field(default_factory=dict)


class BatchWriter:
    """The ``foreachBatch`` function of the streaming job; one instance per query run."""

    def __init__(
        self,
        spark: Any,
        stream: StreamSettings,
        silver: SilverSettings,
        gold: GoldSettings,
        layout: Layout,
        catalog: Any,
        resolvers: Mapping[str, SchemaResolver],
        progress: Mapping[str, TableProgress],
        on_commit: Callable[[BatchReport], None] | None = None,
    ) -> None:
        settled = {identifier: p.settled for identifier, p in progress.items()}
        tasks = stream.write_tasks or int(spark.sparkContext.defaultParallelism)
        self._spark = spark
        self._layout = layout
        self._rollup_s = gold.rollup_interval_s
        self._interpreted_below = stream.interpreted_below_rows
        self._on_commit = on_commit
        self._tasks = tasks
        self.bronze = [
            BronzeStep(
                spark,
                catalog,
                source,
                resolvers[source.name],
                (settled.get(source.table, {}), settled.get(source.rejects, {})),
                tasks,
            )
            for source in layout.sources
        ]
        self.silver = SilverStep(catalog, layout, settled, silver, tasks)
        self.gold = GoldTrades(spark, layout.gold, layout.exchanges)
        self.bars = BarTables(spark, layout.gold, dict(layout.bars))
        gaps = layout.source("gaps")
        self.gaps = GoldGaps(
            catalog, layout.gaps, gaps.topic, settled.get(layout.gaps, {}), layout.exchanges
        )
        self._last_rollup = time.monotonic()
        self._session_ready = False

    def __call__(self, batch: Any, batch_id: int) -> None:
        try:
            self._batch(batch, batch_id)
        except Exception as exc:
            if _INTERRUPTED.search(str(exc)):
                # query.stop() interrupted the batch (it is replayed on the next run). Spark tells
                # a stop from a failure by matching this text with a backtracking regex that
                # overflows the stack on a long Java trace, so the trace is left out of it.
                log.info(
                    "stream_batch_interrupted",
                    batch_id=batch_id,
                    error=str(exc).splitlines()[0][:300],
                )
                raise BatchInterruptedError(_INTERRUPTED_MESSAGE) from None
            raise

    def _batch(self, batch: Any, batch_id: int) -> None:
        started = time.monotonic()
        report = BatchReport(batch_id)
        if not self._session_ready:
            # Spark runs the query in a clone of the session with its own catalog instance.
            renew_sqlite_catalog_connections(batch.sparkSession)
            self._session_ready = True
        frame = kept(framed(batch).coalesce(self._tasks))
        cached: list[Any] = [frame]
        try:
            if not self._write(frame, report, cached):
                return
        finally:
            for item in cached:
                if item is not None:
                    release(item)
        report.duration_s = time.monotonic() - started
        self._committed(report)

    def rollup(self, report: BatchReport | None = None) -> list[BarChanges]:
        """Bring the bars above 1 minute up to date now."""
        started = time.monotonic()
        changes = self.bars.rollup()
        self._last_rollup = time.monotonic()
        if report is not None:
            report.steps["rollup"] = self._last_rollup - started
            report.bars.extend(changes)
        return changes

    def _write(self, frame: Any, report: BatchReport, cached: list[Any]) -> bool:
        """Every layer's writes for the batch; False when it has no records."""
        with _timed(report, "plan"):
            trades = _merged_settled(step.table.settled for step in self.bronze)
            rejects = _merged_settled(step.rejects.settled for step in self.bronze)
            groups = header_groups(frame, trades, rejects)
        if not groups:
            return False
        report.rows = sum(g.n for g in groups)
        for session in (frame.sparkSession, self._spark):  # the query runs in a clone
            _generated_code(session, report.rows >= self._interpreted_below)
        for g in groups:
            offsets = report.last_offsets.setdefault(g.kafka_topic, {})
            offsets[g.kafka_partition] = max(g.last, offsets.get(g.kafka_partition, -1))
        with _timed(report, "decode"):
            results = [step.decode(frame, groups) for step in self.bronze]
            cached.extend(result.cached for result in results)
            report.silver = self.silver.normalise(results)
            cached.extend((report.silver.trades, report.silver.books))
        self._gold(report)
        with _timed(report, "silver"):
            self.silver.write(report.silver, results, report.last_offsets)
        with _timed(report, "bronze"):
            for step, result in zip(self.bronze, results, strict=True):
                step.write(result)
        for result in results:
            if result.rows:
                report.bronze[result.source.name] = result.written
                if result.rejects:
                    report.rejects[result.source.name] = result.rejects
        gaps = next((r for r in results if r.source.kind == GAPS), None)
        if gaps is not None and gaps.records is not None:
            with _timed(report, "gaps"):
                report.gaps = self.gaps.append(gaps.records, report.last_offsets)
        if time.monotonic() - self._last_rollup >= self._rollup_s:
            self.rollup(report)
        return True

    def _gold(self, report: BatchReport) -> None:
        """Gold and the 1-minute bars of the batch's trades: what users wait for."""
        trades = report.silver.trades
        if trades is not None:
            with _timed(report, "gold"):
                minutes = minutes_of(trades)
                report.gold = self.gold.insert(trades, ((m, first) for _, _, m, first in minutes))
            with _timed(report, "bars"):
                report.bars.append(self.bars.update_minutes(m[:3] for m in minutes))
        report.visible_at = time.time()

    def _committed(self, report: BatchReport) -> None:
        quarantined = sum(report.silver.quarantined.values())
        log.info(
            "stream_batch_committed",
            batch_id=report.batch_id,
            rows=report.rows,
            bronze=report.bronze,
            rejects={name: sum(kinds.values()) for name, kinds in report.rejects.items()},
            silver=report.silver.written,
            book_changes=report.silver.book_changes,
            quarantined=quarantined,
            gold=report.gold.inserted,
            duplicates=report.gold.duplicates,
            bars={c.interval: c.new + c.revised for c in report.bars if c.new or c.revised},
            gaps=report.gaps,
            duration_s=round(report.duration_s, 3),
            steps={step: round(seconds, 3) for step, seconds in report.steps.items()},
        )
        if self._on_commit is not None:
            self._on_commit(report)


def _generated_code(session: Any, on: bool) -> None:
    """Whether the batch's plans run as generated code or in Spark's interpreter (same
    results). A small batch spends more CPU compiling its code, which differs batch by batch
    (offsets and times are literals in it), than running it."""
    session.conf.set("spark.sql.codegen.wholeStage", "true" if on else "false")
    session.conf.set("spark.sql.codegen.factoryMode", "FALLBACK" if on else "NO_CODEGEN")


def _merged_settled(markers: Any) -> Positions:
    out: Positions = {}
    for marker in markers:
        out = merged(out, marker)
    return out


@contextmanager
def _timed(report: BatchReport, step: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        report.steps[step] = report.steps.get(step, 0.0) + time.monotonic() - started
