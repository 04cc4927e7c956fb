"""Spark's streaming progress as Prometheus metrics, and each committed batch as metrics too.

Spark reports every micro-batch of every query in the session to a ``StreamingQueryListener`` on
its listener thread; :class:`BronzeListener` keeps those of the Bronze queries it watches (by
query name) and turns them into rates, batch durations and the offset lag per partition (the
source's latest offsets minus the batch's end offsets). The rows and rejects a batch wrote come
from the writer itself (:meth:`BronzeListener.batch_committed`), which knows them exactly.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import structlog
from pyspark.sql.streaming.listener import StreamingQueryListener

from k2.jobs.bronze_sink import BatchResult
from k2.observability.metrics import BronzeMetrics

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


class BronzeListener(StreamingQueryListener):
    """Feeds :class:`BronzeMetrics` from the progress of the Bronze queries it watches."""

    def __init__(self, metrics: BronzeMetrics) -> None:
        super().__init__()
        self.metrics = metrics
        self._exchanges: dict[str, str] = {}  # query name -> exchange
        self._running: dict[str, str] = {}  # query id -> exchange
        self._lock = threading.Lock()

    def watch(self, query_name: str, exchange: str) -> None:
        """Report progress of the query named ``query_name`` under ``exchange``."""
        with self._lock:
            self._exchanges[query_name] = exchange

    def batch_committed(self, result: BatchResult) -> None:
        """Count what a micro-batch wrote (called by the writer after its commits)."""
        metrics = self.metrics
        metrics.rows_written.labels(result.exchange).inc(result.written)
        for kind, count in result.rejects.items():
            metrics.rejects.labels(result.exchange, kind).inc(count)
        metrics.batches.labels(result.exchange).inc()
        metrics.last_commit.labels(result.exchange).set(time.time())

    def _exchange(self, name: str | None) -> str | None:
        with self._lock:
            return self._exchanges.get(name or "")

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 - Spark names it
        exchange = self._exchange(event.name)
        if exchange is not None:
            with self._lock:
                self._running[str(event.id)] = exchange
            self.metrics.query_active.labels(exchange).set(1)

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802 - Spark names it
        progress = event.progress
        exchange = self._exchange(progress.name)
        if exchange is None:
            return
        try:
            self._report(exchange, progress)
        except Exception as exc:  # an exception here would only be printed by Spark's bus
            log.warning("bronze_progress_unreadable", exchange=exchange, error=repr(exc))

    def _report(self, exchange: str, progress: Any) -> None:
        metrics = self.metrics
        metrics.input_rate.labels(exchange).set(progress.inputRowsPerSecond or 0.0)
        metrics.processed_rate.labels(exchange).set(progress.processedRowsPerSecond or 0.0)
        if progress.numInputRows:
            metrics.batch_duration.labels(exchange).observe(progress.batchDuration / 1000)
        for source in progress.sources:
            for partitions in offset_lag(source.latestOffset, source.endOffset).values():
                for partition, lag in partitions.items():
                    metrics.offset_lag.labels(exchange, str(partition)).set(lag)

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802 - Spark names it
        """Idle triggers carry no progress to report."""

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802 - Spark names it
        with self._lock:
            exchange = self._running.pop(str(event.id), None)
        if exchange is not None:
            self.metrics.query_active.labels(exchange).set(0)
