"""The ingest service: every trade from one venue's feed, made durable in Kafka.

Feed events are handled in arrival order on one asyncio task:

- a trade becomes one Avro record (Confluent framing) on ``market.crypto.trades.<exchange>.raw``,
  keyed by the native symbol so a symbol's trades stay ordered in one partition;
- a malformed frame becomes a dead letter on ``.dlq`` with its raw text and the error;
- a gap (ids the venue skipped, or missed across a reconnect or restart) is backfilled from the
  venue's REST history, paced; what cannot be filled is published as an explicit gap event on
  ``market.crypto.gaps`` (and logged at WARNING, and counted). Kraken v1 has no ids, so a
  reconnect there is a gap event over the time interval it may have lost.

Delivery is accounted by producer callbacks; the resume point per symbol is read back from the
raw topic at start-up (:mod:`k2.ingest.resume`). When Kafka is unreachable the producer's bounded
queue fills and the service stops reading from the venue until it drains (memory stays bounded);
trades the venue sent meanwhile are recovered as a gap after the reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
from confluent_kafka.schema_registry import SchemaRegistryClient

from k2.config import KNOWN_EXCHANGES, Settings
from k2.errors import ExchangeError, UnknownSymbolError
from k2.exchanges.base import (
    Control,
    ControlKind,
    FeedEvent,
    FeedStats,
    Gap,
    Malformed,
    RawTrade,
)
from k2.ingest.avro import ConfluentEncoder
from k2.ingest.resume import ResumePoint, read_resume_points
from k2.ingest.venues import BackfillError, FeedSpec, VenueIngest, venue_ingest
from k2.observability.metrics import IngestMetrics, Metrics, serve_metrics
from k2.schemas import schema_text
from k2.schemas.registry import register_value_schema
from k2.transport.producer import DurableProducer, ProducerOptions
from k2.transport.topics import TopicAdmin, dlq_topic, gaps_topic, k2_topics, raw_topic
from k2.version import git_sha, k2_version

log = structlog.get_logger(__name__)


_BACKPRESSURE_POLL_S = 0.05


@dataclass
class SymbolCounts:
    received: int = 0
    delivered: int = 0
    failed: int = 0
    gaps: int = 0
    backfilled: int = 0
    last_received_mono: float = 0.0


@dataclass
class IngestState:
    """Counters of one run, per symbol; read by the periodic summary and by tests."""

    symbols: dict[str, SymbolCounts] = field(default_factory=dict)
    dead_lettered: int = 0
    connected: bool = False
    feed: FeedStats = field(default_factory=FeedStats)  # the running feed client's own counts

    def of(self, symbol: str) -> SymbolCounts:
        counts = self.symbols.get(symbol)
        if counts is None:
            counts = self.symbols[symbol] = SymbolCounts()
        return counts


class IngestService:
    """One venue's feed into Kafka. Build it, then ``await run(stop)``."""

    def __init__(
        self,
        settings: Settings,
        venue: VenueIngest,
        spec: FeedSpec,
        metrics: IngestMetrics,
    ) -> None:
        self.settings = settings
        self.options = settings.ingest
        self.venue = venue
        self.spec = spec
        self.metrics = metrics
        self.state = IngestState()
        self.exchange = venue.exchange
        prefix = settings.kafka.topic_prefix
        self.raw_topic = raw_topic(self.exchange, prefix)
        self.dlq_topic = dlq_topic(self.exchange, prefix)
        self.gaps_topic = gaps_topic(prefix)
        producer_options = ProducerOptions(
            linger_ms=self.options.linger_ms, queue_max_messages=self.options.queue_max_messages
        )
        self._producer = DurableProducer(
            settings.kafka_config(), producer_options, on_delivery=self._on_delivery
        )
        self._version = k2_version()
        self._debug = logging.getLogger(__name__).isEnabledFor(logging.DEBUG)
        # The last trade handled per symbol (its match time is where a time-paged backfill
        # starts); after a restart, the match time of the last record in the topic.
        self._last_trade: dict[str, RawTrade] = {}
        self._resumed_exchange_us: dict[str, int] = {}
        # Sources without trade ids: symbols whose next new trade closes a time-interval gap
        # (after a reconnect or a restart), with the match time the interval starts at.
        self._idless_pending: dict[str, int] = {}
        # Set by prepare(), once each schema is registered.
        self._raw_encoder: ConfluentEncoder
        self._dlq_encoder: ConfluentEncoder
        self._gap_encoder: ConfluentEncoder

    # ----------------------------------------------------------------------------------- setup

    def prepare(self) -> FeedSpec:
        """Topics, schemas and the resume point; raises before anything is produced."""
        mine = {self.raw_topic, self.dlq_topic, self.gaps_topic}
        TopicAdmin(self.settings).ensure([t for t in k2_topics(self.settings) if t.name in mine])
        registry = SchemaRegistryClient(self.settings.registry_config())

        def encoder(name: str, topic: str) -> ConfluentEncoder:
            return ConfluentEncoder(name, register_value_schema(registry, topic, schema_text(name)))

        self._raw_encoder = encoder(self.venue.schema_name, self.raw_topic)
        self._dlq_encoder = encoder("dlq", self.dlq_topic)
        self._gap_encoder = encoder("gap", self.gaps_topic)
        points = read_resume_points(
            self.settings.kafka_config(),
            registry,
            self.raw_topic,
            self.venue.record_trade_id,
            self.venue.native_symbols(self.spec.symbols),
        )
        return self._resume_spec(points)

    def _resume_spec(self, points: dict[str, ResumePoint]) -> FeedSpec:
        last_ids = {s: p.last_trade_id for s, p in points.items() if p.last_trade_id is not None}
        for symbol, point in points.items():
            exchange_us = self.venue.record_exchange_us(point.last_record)
            if exchange_us is None:
                continue
            self._resumed_exchange_us[symbol] = exchange_us
            if point.last_trade_id is None:
                self._idless_pending[symbol] = exchange_us
        if points:
            log.info(
                "ingest_resumed_from_topic",
                exchange=self.exchange,
                symbols=len(points),
                with_ids=len(last_ids),
            )
        return replace(self.spec, last_trade_ids=last_ids)

    # ------------------------------------------------------------------------------------ run

    async def run(self, stop: asyncio.Event) -> int:
        """Ingest until ``stop`` is set; returns the number of records not delivered."""
        spec = self.prepare()
        client = self.venue.client(spec)
        self.state.feed = client.stats
        self.metrics.watch_feed(client.stats.counts)
        log.info(
            "ingest_started",
            exchange=self.exchange,
            symbols=list(spec.symbols),
            version=self._version,
            git_sha=git_sha(),
            topic=self.raw_topic,
        )
        summary = asyncio.create_task(self._summaries(stop))
        reader = asyncio.create_task(self._consume(client, spec, stop))
        await stop.wait()
        await client.close()
        reader.cancel()
        summary.cancel()
        outcomes = await asyncio.gather(reader, summary, return_exceptions=True)
        undelivered = self._producer.close(self.options.flush_timeout_s)
        self.metrics.queue_depth.labels(self.exchange).set(undelivered)
        self._log_summary("ingest_stopped")
        if undelivered:
            log.error("kafka_delivery_incomplete", exchange=self.exchange, undelivered=undelivered)
        failure = outcomes[0]
        if isinstance(failure, Exception) and not isinstance(failure, asyncio.CancelledError):
            raise failure
        return undelivered

    def health(self) -> tuple[bool, str]:
        """``/healthz``: healthy while connected to the venue and Kafka accepts records."""
        stats = self._producer.stats
        if not self.state.connected:
            return False, f"{self.exchange}: not connected to the venue\n"
        if stats.last_error is not None and stats.failed:
            return False, f"{self.exchange}: kafka delivery failing: {stats.last_error}\n"
        return True, f"{self.exchange}: ok, {stats.delivered} delivered\n"

    async def _consume(self, client: Any, spec: FeedSpec, stop: asyncio.Event) -> None:
        try:
            async for event in client.events():
                await self.handle(event, spec, stop)
                if stop.is_set():
                    break
        except Exception as exc:
            log.error("ingest_feed_failed", exchange=self.exchange, error=str(exc))
            stop.set()
            raise

    async def handle(self, event: FeedEvent, spec: FeedSpec, stop: asyncio.Event) -> None:
        if isinstance(event, RawTrade):
            await self._trade(event, stop)
        elif isinstance(event, Malformed):
            await self._dead_letter(event, stop)
        elif isinstance(event, Gap):
            await self._gap(event, spec, stop)
        elif isinstance(event, Control):
            self._control(event)

    # ---------------------------------------------------------------------------- per event

    async def _trade(self, raw: RawTrade, stop: asyncio.Event, *, backfilled: bool = False) -> None:
        message_id = self.venue.message_id(raw)
        record = self.venue.to_record(raw, message_id, self._version)
        counts = self.state.of(raw.native_symbol)
        counts.received += 1
        counts.last_received_mono = time.monotonic()
        symbol_metrics = self.metrics.symbol(raw.native_symbol)
        symbol_metrics.received.inc()
        if backfilled:
            counts.backfilled += 1
            symbol_metrics.backfilled.inc()
        if raw.trade_key is None:
            await self._note_idless_trade(raw, stop)
        if not backfilled:
            self._last_trade[raw.native_symbol] = raw
        if self._debug:  # per trade: skip even building the call when DEBUG is off
            log.debug(
                "ingest_trade", exchange=self.exchange, symbol=raw.native_symbol, id=message_id
            )
        encoded = self._raw_encoder.encode(record)
        opaque = (raw.native_symbol, raw.envelope.received_us)
        await self._produce(self.raw_topic, encoded, raw.native_symbol.encode(), opaque, stop)

    async def _produce(
        self, topic: str, value: bytes, key: bytes | None, opaque: object, stop: asyncio.Event
    ) -> None:
        """Queue a record; while the producer's bounded queue is full, stop reading and wait."""
        while not self._producer.try_produce(topic, value, key, opaque):
            self.metrics.queue_depth.labels(self.exchange).set(self._producer.queue_depth())
            if stop.is_set():
                return
            await asyncio.sleep(_BACKPRESSURE_POLL_S)

    def _on_delivery(self, msg: Any, err: Any, opaque: object) -> None:
        if not isinstance(opaque, tuple):
            return
        symbol, received_us = opaque
        counts = self.state.of(symbol)
        if err is None:
            counts.delivered += 1
            self.metrics.symbol(symbol).delivered.inc()
            self.metrics.delivery_latency.observe(max(0.0, time.time() - received_us / 1e6))
        else:
            counts.failed += 1
            self.metrics.symbol(symbol).failed.inc()
            log.error(
                "kafka_delivery_failed", exchange=self.exchange, symbol=symbol, error=str(err)
            )

    async def _dead_letter(self, bad: Malformed, stop: asyncio.Event) -> None:
        self.state.dead_lettered += 1
        self.metrics.dead_lettered.labels(self.exchange).inc()
        record = {
            "exchange": self.exchange,
            "raw": bad.raw,
            "error": bad.error,
            "received_us": bad.envelope.received_us,
            "connection_id": bad.envelope.connection_id,
            "position": bad.envelope.position,
            "protocol": bad.envelope.protocol,
            "k2_version": self._version,
        }
        value = self._dlq_encoder.encode(record)
        await self._produce(self.dlq_topic, value, None, None, stop)

    def _control(self, event: Control) -> None:
        if event.kind == ControlKind.CONNECTED:
            self.state.connected = True
            self.metrics.connected.labels(self.exchange).set(1)
        elif event.kind == ControlKind.DISCONNECTED:
            self.state.connected = False
            self.metrics.connected.labels(self.exchange).set(0)
            self._idless_pending.update(
                (symbol, exchange_us)
                for symbol, raw in self._last_trade.items()
                if raw.trade_key is None
                and (exchange_us := self.venue.exchange_us(raw)) is not None
            )

    # ------------------------------------------------------------------------------------ gaps

    async def _gap(self, gap: Gap, spec: FeedSpec, stop: asyncio.Event) -> None:
        """Backfill an id range from REST; publish the gap event either way."""
        symbol = gap.native_symbol
        missing = gap.last_missing - gap.first_missing + 1
        self.state.of(symbol).gaps += 1
        self.metrics.gaps.labels(self.exchange, symbol).inc()
        recovered: list[RawTrade] = []
        reason = None
        try:
            recovered = await self.venue.backfill(
                spec, symbol, gap.first_missing, gap.last_missing, self._exchange_us_before(symbol)
            )
        except BackfillError as exc:
            reason = f"backfill failed: {exc}"
        for raw in recovered:
            await self._trade(raw, stop, backfilled=True)
        found = {
            raw.trade_key
            for raw in recovered
            if raw.trade_key is not None and gap.first_missing <= raw.trade_key <= gap.last_missing
        }
        unfilled = missing - len(found)  # arithmetic: a gap may span billions of ids
        if unfilled and reason is None:
            reason = f"venue history returned {missing - unfilled} of {missing} trades"
        await self._publish_gap(gap, len(recovered), unfilled, reason, stop)

    def _exchange_us_before(self, symbol: str) -> int | None:
        """Match time of the last trade handled for ``symbol`` (or of the topic's last one)."""
        last = self._last_trade.get(symbol)
        if last is not None:
            return self.venue.exchange_us(last)
        return self._resumed_exchange_us.get(symbol)

    async def _publish_gap(
        self, gap: Gap, recovered: int, unfilled: int, reason: str | None, stop: asyncio.Event
    ) -> None:
        filled = unfilled == 0
        logger = log.info if filled else log.warning
        logger(
            "ingest_gap_backfilled" if filled else "ingest_gap_unfilled",
            exchange=self.exchange,
            symbol=gap.native_symbol,
            first_missing=gap.first_missing,
            last_missing=gap.last_missing,
            detected_by=gap.detected_by,
            backfilled=recovered,
            reason=reason,
        )
        if unfilled:
            self.metrics.gap_trades_unfilled.labels(self.exchange, gap.native_symbol).inc(unfilled)
        await self._emit_gap_record(
            gap.native_symbol,
            {"first_missing_id": gap.first_missing, "last_missing_id": gap.last_missing},
            gap.detected_by,
            filled,
            recovered,
            reason,
            stop,
        )

    async def _emit_gap_record(
        self,
        symbol: str,
        span: dict[str, int | None],
        detected_by: str,
        backfilled: bool,
        count: int,
        reason: str | None,
        stop: asyncio.Event,
    ) -> None:
        record = {
            "exchange": self.exchange,
            "exchange_symbol": symbol,
            "first_missing_id": span.get("first_missing_id"),
            "last_missing_id": span.get("last_missing_id"),
            "from_us": span.get("from_us"),
            "to_us": span.get("to_us"),
            "detected_by": detected_by,
            "backfilled": backfilled,
            "backfilled_count": count,
            "reason": reason,
            "detected_us": time.time_ns() // 1000,
            "k2_version": self._version,
        }
        value = self._gap_encoder.encode(record)
        await self._produce(self.gaps_topic, value, symbol.encode(), None, stop)

    async def _note_idless_trade(self, raw: RawTrade, stop: asyncio.Event) -> None:
        """Sources without ids: the first new trade after a break closes a time-interval gap."""
        if raw.snapshot or raw.native_symbol not in self._idless_pending:
            return
        exchange_us = self.venue.exchange_us(raw)
        if exchange_us is None:
            return
        since = self._idless_pending.pop(raw.native_symbol)
        reason = "the venue sends no trade ids here: trades in this interval may be missing"
        log.warning(
            "ingest_gap_unfilled",
            exchange=self.exchange,
            symbol=raw.native_symbol,
            from_us=since,
            to_us=exchange_us,
            reason=reason,
        )
        self.metrics.gaps.labels(self.exchange, raw.native_symbol).inc()
        self.state.of(raw.native_symbol).gaps += 1
        span: dict[str, int | None] = {"from_us": since, "to_us": exchange_us}
        await self._emit_gap_record(raw.native_symbol, span, "reconnect", False, 0, reason, stop)

    # -------------------------------------------------------------------------------- summary

    async def _summaries(self, stop: asyncio.Event) -> None:
        produced, replayed = 0, 0
        while not stop.is_set():
            await asyncio.sleep(self.options.summary_interval_s)
            self._producer.poll(0)
            self._log_summary("ingest_summary")
            now_produced = self._producer.stats.produced
            now_replayed = self.state.feed.duplicates_dropped
            if now_replayed > replayed and now_produced == produced:
                log.warning(
                    "ingest_only_replayed_trades",
                    exchange=self.exchange,
                    dropped=now_replayed - replayed,
                    hint="every trade received had an id at or below the last one already in "
                    "Kafka; a venue whose ids went back (a simulator restarted with a fixed "
                    "--id-base) delivers nothing new until its ids pass them",
                )
            produced, replayed = now_produced, now_replayed

    def _log_summary(self, event: str) -> None:
        now = time.monotonic()
        depth = self._producer.queue_depth()
        self.metrics.queue_depth.labels(self.exchange).set(depth)
        per_symbol = {}
        for symbol, c in sorted(self.state.symbols.items()):
            age = now - c.last_received_mono if c.last_received_mono else None
            if age is not None:
                self.metrics.last_trade_age.labels(self.exchange, symbol).set(age)
            per_symbol[symbol] = (
                f"received={c.received} delivered={c.delivered} failed={c.failed} "
                f"gaps={c.gaps} backfilled={c.backfilled}"
            )
        stats = self._producer.stats
        log.info(
            event,
            exchange=self.exchange,
            received=stats.produced,
            delivered=stats.delivered,
            failed=stats.failed,
            in_flight=stats.in_flight,
            queue_depth=depth,
            dead_lettered=self.state.dead_lettered,
            feed=self.state.feed.counts(),
            symbols=per_symbol,
        )


# ------------------------------------------------------------------------------------ entry


def feed_spec(settings: Settings, venue: VenueIngest) -> FeedSpec:
    """The configured symbols and, for the simulator source, where the simulator listens."""
    symbols = getattr(settings.ingest, f"{venue.exchange}_symbols")
    if settings.ingest.source == "simulator":
        ws_url, rest_url = venue.simulator_urls(settings.ingest.simulator_url)
        return FeedSpec(tuple(symbols), ws_url, rest_url)
    return FeedSpec(tuple(symbols))


def metrics_port(settings: Settings, exchange: str) -> int:
    """Each exchange's ingest serves metrics on its own port: the base port plus its index."""
    base = settings.ingest.metrics_port
    return 0 if base == 0 else base + KNOWN_EXCHANGES.index(exchange)


def run_ingest(settings: Settings, exchange: str, port: int | None = None) -> int:
    """``k2 ingest``: run until SIGTERM/SIGINT; the number of records left undelivered.

    Metrics are served on ``port``, by default the exchange's :func:`metrics_port`.
    """
    venue = venue_ingest(exchange, settings.ingest)
    metrics = Metrics(f"ingest-{exchange}")
    ingest_metrics = IngestMetrics(metrics, exchange)
    service = IngestService(settings, venue, feed_spec(settings, venue), ingest_metrics)
    server = serve_metrics(
        metrics,
        settings.stack.host,
        metrics_port(settings, exchange) if port is None else port,
        service.health,
    )
    log.info("ingest_metrics_serving", exchange=exchange, port=server.port)
    try:
        return asyncio.run(_until_signalled(service))
    except ExchangeError as exc:
        if settings.ingest.source == "live" and not isinstance(exc, UnknownSymbolError):
            raise ExchangeError(
                f"{exchange} cannot be reached ({exc}); without internet access run the local "
                "simulator: make run SOURCE=simulator (or K2_INGEST__SOURCE=simulator with "
                "`k2 simulate` running)"
            ) from exc
        raise
    finally:
        server.stop()


async def _until_signalled(service: IngestService) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    return await service.run(stop)
