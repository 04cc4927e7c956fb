"""Every Prometheus metric K2 exports, defined once, and the HTTP endpoint that serves them.

Each service builds one :class:`Metrics` (with its own registry, so tests can run several services
in one process) and serves it with :func:`serve_metrics` on ``/metrics``, next to ``/healthz``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from k2.version import git_sha, k2_version


class Metrics:
    """The metrics of one K2 process, registered in their own registry."""

    def __init__(self, component: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.component = component
        self.build_info = Info(
            "k2_build",
            "Version and git sha of the running K2 code.",
            registry=self.registry,
        )
        self.build_info.info(
            {"version": k2_version(), "git_sha": git_sha(), "component": component}
        )
        self.up = Gauge(
            "k2_component_up",
            "1 while the component is running.",
            registry=self.registry,
        )
        self.up.set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


HealthCheck = Callable[[], tuple[bool, str]]


class MetricsServer:
    """A small HTTP server: ``/metrics`` (Prometheus text format) and ``/healthz``."""

    def __init__(self, metrics: Metrics, host: str, port: int, health: HealthCheck) -> None:
        handler = _handler_for(metrics, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(metrics: Metrics, health: HealthCheck) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                self._reply(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif self.path.startswith("/healthz"):
                ok, detail = health()
                self._reply(200 if ok else 503, detail.encode(), "text/plain; charset=utf-8")
            else:
                self._reply(404, b"not found\n", "text/plain; charset=utf-8")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Silence the per-request access log."""

    return Handler


def serve_metrics(
    metrics: Metrics, host: str, port: int, health: HealthCheck | None = None
) -> MetricsServer:
    """Start serving ``metrics`` on ``host:port`` in a daemon thread."""
    return MetricsServer(metrics, host, port, health or (lambda: (True, "ok\n"))).start()


class SymbolCounters(Protocol):
    """What the ingest counts per symbol (read at scrape time, never on the hot path)."""

    symbol: str
    received: int
    delivered: int
    failed: int
    backfilled: int


class IngestMetrics:
    """Metrics of one ingest process (one exchange, one shard), registered on its
    :class:`Metrics`.

    The per-symbol trade counters (received, delivered, failed, backfilled) and the age of each
    symbol's last trade are read from the ingest's own counters at scrape time, so counting a
    trade costs an integer increment, not a labelled metric's lock.
    """

    def __init__(self, metrics: Metrics, exchange: str) -> None:
        registry = metrics.registry
        labels = ("exchange", "symbol")
        self.exchange = exchange
        self.dead_lettered = Counter(
            "k2_ingest_frames_dead_lettered",
            "Frames that could not be parsed, sent to the DLQ topic.",
            ("exchange",),
            registry=registry,
        )
        self.gaps = Counter(
            "k2_ingest_gaps", "Gap events (missing trade ranges).", labels, registry=registry
        )
        self.gap_trades_unfilled = Counter(
            "k2_ingest_gap_trades_unfilled",
            "Trades known missing and not backfilled (where the range is an id range).",
            labels,
            registry=registry,
        )
        self.connected = Gauge(
            "k2_ingest_connected",
            "1 while every exchange connection of the process is up.",
            ("exchange",),
            registry=registry,
        )
        self.connections = Gauge(
            "k2_ingest_connections",
            "Open WebSocket connections to the exchange.",
            ("exchange",),
            registry=registry,
        )
        self.symbols = Gauge(
            "k2_ingest_symbols",
            "Symbols the process is subscribed to (its shard's share of the exchange).",
            ("exchange",),
            registry=registry,
        )
        self.queue_depth = Gauge(
            "k2_ingest_producer_queue_depth",
            "Records queued in the producer, not yet acknowledged.",
            ("exchange",),
            registry=registry,
        )
        self.backfill_waiting = Gauge(
            "k2_ingest_backfill_gaps_waiting",
            "Gaps queued for REST backfill or being filled.",
            ("exchange",),
            registry=registry,
        )
        self.latency = Histogram(
            "k2_ingest_delivery_latency_seconds",
            "Time from receiving a trade's frame to Kafka acknowledging its record.",
            ("exchange",),
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.delivery_latency = self.latency.labels(exchange)
        self.receive_lag = Histogram(
            "k2_ingest_receive_lag_seconds",
            "Exchange time of the newest trade of a frame to the time K2 received it (sampled "
            "every 0.1 s): how far the ingest reads behind the exchange.",
            ("exchange",),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        ).labels(exchange)
        self._lag = _Lag(exchange)
        registry.register(self._lag)
        self._per_symbol = _SymbolCounts(exchange)
        registry.register(self._per_symbol)
        self._feed = _FeedCounters(exchange)
        registry.register(self._feed)

    def watch_feed(self, counts: Callable[[], dict[str, int]]) -> None:
        """Export the feed client's own counts (read at scrape time): frames, replayed trades
        dropped, malformed frames, reconnects."""
        self._feed.counts = counts

    def watch_symbols(
        self,
        symbols: Callable[[], Iterable[SymbolCounters]],
        last_seen: Callable[[str], float | None],
    ) -> None:
        """Export the per-symbol trade counters and the age of each symbol's last live trade
        (``last_seen``: its monotonic time, None before the first), read at scrape time."""
        self._per_symbol.symbols = symbols
        self._per_symbol.last_seen = last_seen

    def watch_lag(self, newest_exchange_us: Callable[[], int | None]) -> None:
        """Export ``k2_ingest_lag_seconds``: now minus the exchange time of the newest trade."""
        self._lag.newest = newest_exchange_us


class _Lag(Collector):
    """``k2_ingest_lag_seconds{exchange}``: now minus the newest trade's exchange time."""

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.newest: Callable[[], int | None] = lambda: None

    def collect(self) -> Any:
        family = GaugeMetricFamily(
            "k2_ingest_lag_seconds",
            "Seconds between now and the exchange time of the newest trade received (grows "
            "while the exchange is quiet, and while the ingest falls behind it).",
            labels=("exchange",),
        )
        newest = self.newest()
        if newest is not None:
            family.add_metric((self.exchange,), max(0.0, time.time() - newest / 1e6))
        yield family


class _SymbolCounts(Collector):
    """The per-symbol trade counters and last-trade ages, from the ingest's own counts."""

    _COUNTERS = (
        ("k2_ingest_trades_received", "Trades received from the exchange.", "received"),
        ("k2_ingest_trades_delivered", "Trades acknowledged by Kafka.", "delivered"),
        ("k2_ingest_trades_failed", "Trades Kafka did not accept.", "failed"),
        ("k2_ingest_trades_backfilled", "Trades recovered from the exchange's REST history.",
         "backfilled"),
    )  # fmt: skip

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.symbols: Callable[[], Iterable[SymbolCounters]] = list
        self.last_seen: Callable[[str], float | None] = lambda symbol: None

    def collect(self) -> Any:
        labels = ("exchange", "symbol")
        families = [
            (CounterMetricFamily(name, doc, labels=labels), attribute)
            for name, doc, attribute in self._COUNTERS
        ]
        age = GaugeMetricFamily(
            "k2_ingest_last_trade_age_seconds",
            "Seconds since the last trade of the symbol was received.",
            labels=labels,
        )
        now = time.monotonic()
        for counts in list(self.symbols()):
            key = (self.exchange, counts.symbol)
            for family, attribute in families:
                family.add_metric(key, getattr(counts, attribute))
            seen = self.last_seen(counts.symbol)
            if seen is not None:
                age.add_metric(key, max(0.0, now - seen))
        for family, _ in families:
            yield family
        yield age


class _FeedCounters(Collector):
    """``k2_ingest_feed_events_total{exchange,kind}``: what the feed client counted itself."""

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.counts: Callable[[], dict[str, int]] = dict

    def collect(self) -> Any:
        family = CounterMetricFamily(
            "k2_ingest_feed_events",
            "Feed events counted by the exchange client: frames, replayed trades dropped (already "
            "delivered: reconnect snapshots, overlaps, an exchange sending old ids), malformed "
            "frames, reconnects.",
            labels=("exchange", "kind"),
        )
        for kind, value in sorted(self.counts().items()):
            family.add_metric((self.exchange, kind), value)
        yield family


class BookCounters(Collector):
    """The book capture's counts, read at scrape time from the capture: messages and their
    verdicts, breaks by reason, resyncs, records delivered, and the books unverified now."""

    def __init__(self, exchange: str, stats: Callable[[], dict[str, int]]) -> None:
        self.exchange = exchange
        self.stats = stats

    def collect(self) -> Any:
        stats = self.stats()
        counters = {
            "messages": CounterMetricFamily(
                "k2_ingest_book_messages",
                "Order book messages received, by their verdict: verified, ignored (older than "
                "the book's snapshot), unverified.",
                labels=("exchange", "outcome"),
            ),
            "breaks": CounterMetricFamily(
                "k2_ingest_book_breaks",
                "Books that stopped being verified, by reason (checksum_mismatch, "
                "sequence_gap, snapshot_too_old, malformed...).",
                labels=("exchange", "reason"),
            ),
            "records": CounterMetricFamily(
                "k2_ingest_book_records",
                "Book records handed to Kafka, by state: delivered, failed.",
                labels=("exchange", "state"),
            ),
        }
        resyncs = CounterMetricFamily(
            "k2_ingest_book_resyncs", "Book resyncs requested.", labels=("exchange",)
        )
        unverified = GaugeMetricFamily(
            "k2_ingest_books_unverified",
            "Symbols whose book is unverified now (waiting for its resync's snapshot).",
            labels=("exchange",),
        )
        for name, value in sorted(stats.items()):
            kind, _, label = name.partition(":")
            if kind in counters:
                counters[kind].add_metric((self.exchange, label), value)
            elif kind == "resyncs":
                resyncs.add_metric((self.exchange,), value)
            elif kind == "unverified":
                unverified.add_metric((self.exchange,), value)
        yield from counters.values()
        yield resyncs
        yield unverified


class StreamMetrics:
    """Metrics of the streaming job (``k2 job stream``): one query, every layer.

    Per layer and table, the rows each micro-batch wrote are counted by the writes themselves;
    rates, batch durations and the Kafka lag come from Spark's streaming progress
    (:mod:`k2.jobs.listener`). Freshness is read at scrape time from the newest ``exchange_ts``
    each exchange has in ``gold.trades``.
    """

    def __init__(self, metrics: Metrics, clock: Callable[[], float] | None = None) -> None:
        registry = metrics.registry
        exchange = ("exchange",)
        self.query_active = Gauge(
            "k2_stream_query_active", "1 while the streaming query runs.", registry=registry
        )
        self.query_restarts = Counter(
            "k2_stream_query_restarts",
            "Times the streaming query was restarted after a failure.",
            registry=registry,
        )
        self.batches = Counter(
            "k2_stream_batches_committed",
            "Micro-batches whose every table write committed.",
            registry=registry,
        )
        self.last_commit = Gauge(
            "k2_stream_last_commit_timestamp_seconds",
            "Unix time the last micro-batch finished committing.",
            registry=registry,
        )
        self.batch_duration = Histogram(
            "k2_stream_batch_duration_seconds",
            "Wall time of a micro-batch with records, planning to the last commit.",
            buckets=(0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120),
            registry=registry,
        )
        self.step_duration = Histogram(
            "k2_stream_step_duration_seconds",
            "Wall time of one step of a micro-batch: bronze, silver, gold, bars, rollup, gaps.",
            ("step",),
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 60),
            registry=registry,
        )
        self.input_rate = Gauge(
            "k2_stream_input_rows_per_second",
            "Records per second arriving in the last micro-batch (Spark's inputRowsPerSecond).",
            registry=registry,
        )
        self.processed_rate = Gauge(
            "k2_stream_processed_rows_per_second",
            "Records per second the last micro-batch processed (Spark's processedRowsPerSecond).",
            registry=registry,
        )
        self.offset_lag = Gauge(
            "k2_stream_offset_lag",
            "Records in Kafka not yet read by the job, per topic and partition, after the last "
            "micro-batch.",
            ("topic", "partition"),
            registry=registry,
        )
        self.bronze_rows = Counter(
            "k2_bronze_rows_written",
            "Records appended to bronze.<exchange>_trades.",
            exchange,
            registry=registry,
        )
        self.bronze_rejects = Counter(
            "k2_bronze_rejects",
            "Records appended to bronze.<exchange>_rejects, by reason.",
            ("exchange", "kind"),
            registry=registry,
        )
        self.silver_rows = Counter(
            "k2_silver_rows_written",
            "Validated trades appended to silver.<exchange>_trades.",
            exchange,
            registry=registry,
        )
        self.quarantined = Counter(
            "k2_silver_quarantined",
            "Trades appended to silver.quarantine, by exchange and reason (a trade that fails "
            "several rules counts once per reason).",
            ("exchange", "reason"),
            registry=registry,
        )
        self.gold_rows = Counter(
            "k2_gold_rows_written",
            "Trades inserted into gold.trades (first copy of each message_id).",
            exchange,
            registry=registry,
        )
        self.gold_duplicates = Counter(
            "k2_gold_duplicates_removed",
            "Valid trades not inserted into gold.trades because their message_id was already "
            "there or came twice in the batch (reconnect snapshots, backfill overlap, replays).",
            exchange,
            registry=registry,
        )
        self.bars_written = Counter(
            "k2_gold_bars_written",
            "OHLCV bars inserted (change=new) or revised (change=revised), by interval.",
            ("interval", "change"),
            registry=registry,
        )
        self.gaps_written = Counter(
            "k2_gold_gaps_written",
            "Gap events appended to gold.gaps, by exchange.",
            exchange,
            registry=registry,
        )
        self.newest_trade = Gauge(
            "k2_gold_newest_trade_timestamp_seconds",
            "exchange_ts of the newest trade in gold.trades, per exchange (Unix time).",
            exchange,
            registry=registry,
        )
        registry.register(_Freshness(self.newest_trade, clock or time.time))


class _Freshness(Collector):
    """``k2_gold_freshness_seconds{exchange}``: now minus the newest ``exchange_ts`` in Gold."""

    def __init__(self, newest: Gauge, clock: Callable[[], float]) -> None:
        self._newest = newest
        self._clock = clock

    def collect(self) -> Any:
        family = GaugeMetricFamily(
            "k2_gold_freshness_seconds",
            "Seconds between now and the newest exchange_ts of the exchange in gold.trades.",
            labels=("exchange",),
        )
        now = self._clock()
        for metric in self._newest.collect():
            for sample in metric.samples:
                family.add_metric((sample.labels["exchange"],), max(0.0, now - sample.value))
        yield family
