"""Spark's streaming progress as Prometheus metrics, and each committed batch as metrics too.

Spark reports every micro-batch of every query in the session to a ``StreamingQueryListener`` on
its listener thread; :class:`StreamListener` keeps those of the streaming job's query (by name)
and turns them into rates, batch durations and the offset lag per topic and partition (the
source's latest offsets minus the batch's end offsets). What each layer wrote comes from the
writer itself (:meth:`StreamListener.batch_committed`), which knows it exactly.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import structlog
from pyspark.sql.streaming.listener import StreamingQueryListener

from k2.jobs.batch import BatchReport
from k2.observability.metrics import StreamMetrics

log = structlog.get_logger(__name__)


def offset_lag(latest: str | None, end: str | None) -> dict[str, dict[int, int]]:
    """Per topic and partition, ``latest - end`` of two Kafka source offset JSON documents."""
    try:
        latest_offsets = json.loads(latest or "null")
        end_offsets = json.loads(end or "null")
    except ValueError:
        return {}
    if not isinstance(latest_offsets, dict) or not isinstance(end_offsets, dict):
        return {}
    lag: dict[str, dict[int, int]] = {}
    for topic, partitions in latest_offsets.items():
        done = end_offsets.get(topic, {})
        lag[topic] = {int(p): max(0, int(o) - int(done.get(p, o))) for p, o in partitions.items()}
    return lag


class StreamListener(StreamingQueryListener):
    """Feeds :class:`StreamMetrics` from the progress of the query named ``query_name``."""

    def __init__(self, metrics: StreamMetrics, query_name: str) -> None:
        super().__init__()
        self.metrics = metrics
        self._name = query_name
        self._running: set[str] = set()
        self._newest_s: dict[str, float] = {}  # exchange -> newest exchange_ts in Gold
        self._lock = threading.Lock()

    def batch_committed(self, report: BatchReport) -> None:
        """Count what a micro-batch wrote (called by the writer after its commits)."""
        m = self.metrics
        for source, written in report.bronze.items():
            m.bronze_rows.labels(source).inc(written)
        for source, kinds in report.rejects.items():
            for kind, count in kinds.items():
                m.bronze_rejects.labels(source, kind).inc(count)
        for exchange, written in report.silver.written.items():
            m.silver_rows.labels(exchange).inc(written)
        for (exchange, reason), count in report.silver.quarantined.items():
            m.quarantined.labels(exchange, reason).inc(count)
        for exchange, inserted in report.gold.inserted.items():
            m.gold_rows.labels(exchange).inc(inserted)
        for exchange, duplicates in report.gold.duplicates.items():
            m.gold_duplicates.labels(exchange).inc(max(0, duplicates))
        for exchange, newest_us in report.gold.newest_us.items():
            newest = max(self._newest_s.get(exchange, 0.0), newest_us / 1_000_000)
            self._newest_s[exchange] = newest
            m.newest_trade.labels(exchange).set(newest)
        for change in report.bars:
            m.bars_written.labels(change.interval, "new").inc(change.new)
            m.bars_written.labels(change.interval, "revised").inc(change.revised)
        for exchange, count in report.gaps.items():
            m.gaps_written.labels(exchange).inc(count)
        for step, seconds in report.steps.items():
            m.step_duration.labels(step).observe(seconds)
        m.batch_duration.observe(report.duration_s)
        m.batches.inc()
        m.last_commit.set(time.time())

    def _ours(self, name: str | None) -> bool:
        return name == self._name

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 - Spark names it
        if self._ours(event.name):
            with self._lock:
                self._running.add(str(event.id))
            self.metrics.query_active.set(1)

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802 - Spark names it
        progress = event.progress
        if not self._ours(progress.name):
            return
        try:
            self._report(progress)
        except Exception as exc:  # noqa: BLE001 - an exception here would only be printed by Spark's bus
            log.warning("stream_progress_unreadable", error=repr(exc))

    def _report(self, progress: Any) -> None:
        metrics = self.metrics
        metrics.input_rate.set(progress.inputRowsPerSecond or 0.0)
        metrics.processed_rate.set(progress.processedRowsPerSecond or 0.0)
        for source in progress.sources:
            for topic, partitions in offset_lag(source.latestOffset, source.endOffset).items():
                for partition, lag in partitions.items():
                    metrics.offset_lag.labels(topic, str(partition)).set(lag)

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802 - Spark names it
        """Idle triggers carry no progress to report."""

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802 - Spark names it
        with self._lock:
            ours = str(event.id) in self._running
            self._running.discard(str(event.id))
        if ours:
            self.metrics.query_active.set(0)
