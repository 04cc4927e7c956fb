"""The ingest service: every trade of one exchange's feed (or one shard of it), durable in Kafka.

The feed client calls :meth:`IngestService.accept` once per received frame, synchronously:

- a trade becomes one Avro record (Confluent framing) on ``market.crypto.trades.<exchange>.raw``,
  keyed by the native symbol so a symbol's trades share one partition;
- a malformed frame becomes a dead letter on ``.dlq`` with its raw text and the error;
- a gap (ids the exchange skipped, or missed across a reconnect or restart) is queued for REST
  backfill (:mod:`k2.ingest.backfill`) and the feed reads on; what cannot be filled is published
  as an explicit gap event on ``market.crypto.gaps`` (and logged at WARNING, and counted).
  Where ids reveal no gap (Kraken v1 has none; Bybit's are shared by every symbol), a reconnect
  or a restart is a gap over the time interval it may have lost, filled as far as the exchange's
  history allows (:mod:`k2.ingest.intervals`).

Records are handed to the producer as they are made and each is acknowledged by its own
delivery report (:mod:`k2.ingest.delivery`); the resume point per symbol is read back from the
raw topic at start-up (:mod:`k2.ingest.resume`). When Kafka is unreachable the producer's
bounded queue fills and the feed stops reading from the exchange until it drains (memory stays
bounded); trades the exchange sent meanwhile are recovered as gaps once reading resumes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
import uvloop
from confluent_kafka.schema_registry import SchemaRegistryClient

from k2.config import Settings
from k2.errors import ExchangeError, UnknownSymbolError
from k2.exchanges.base import Control, ControlKind, FeedEvent, FeedStats, Gap, Malformed, RawTrade
from k2.exchanges.contract import ExchangeAdapter, FeedSpec, Interval, IntervalFill
from k2.exchanges.factory import adapter_for, feed_spec, metrics_port
from k2.exchanges.feed import FeedClientBase
from k2.ingest.avro import ConfluentEncoder, dead_letter_record
from k2.ingest.backfill import Backfills, GapJob, Outcome
from k2.ingest.books import BookCapture
from k2.ingest.delivery import Deliveries, SymbolCounts
from k2.ingest.intervals import Break, IntervalGaps
from k2.ingest.resume import ResumePoint, read_resume_points
from k2.ingest.summary import log_summary, watch_replays
from k2.observability.metrics import BookCounters, IngestMetrics, Metrics, serve_metrics
from k2.schemas import schema_text
from k2.schemas.registry import register_value_schema
from k2.transport.producer import DurableProducer, ProducerOptions
from k2.transport.topics import TopicAdmin, dlq_topic, gaps_topic, k2_topics, raw_topic
from k2.version import git_sha, k2_version

log = structlog.get_logger(__name__)

_LAG_SAMPLE_S = 0.1
_POLL_IDLE_S = 0.05  # how often delivery reports are served while nothing is in flight
_POLL_BUSY_S = 0.005  # ... and while records are: a report never waits long for a quiet feed
_STOP_BACKFILL_S = 10.0


@dataclass
class IngestState:
    """Counters of one run, per symbol; read by the summary, the metrics and tests."""

    symbols: dict[str, SymbolCounts] = field(default_factory=dict)
    dead_lettered: int = 0
    connected: bool = False
    feed: FeedStats = field(default_factory=FeedStats)  # the running feed client's own counts
    on_new: Callable[[SymbolCounts], None] | None = None  # told of each symbol's counters

    def of(self, symbol: str) -> SymbolCounts:
        counts = self.symbols.get(symbol)
        if counts is None:
            counts = self.symbols[symbol] = SymbolCounts(symbol)
            if self.on_new is not None:
                self.on_new(counts)
        return counts


class IngestService:
    """One exchange's feed (or shard) into Kafka. Build it, then ``await run(stop)``."""

    def __init__(
        self, settings: Settings, adapter: ExchangeAdapter, spec: FeedSpec, metrics: IngestMetrics
    ) -> None:
        self.settings = settings
        self.options = settings.ingest
        self.adapter = adapter
        self.spec = spec
        self.metrics = metrics
        self.exchange = adapter.exchange
        prefix = settings.kafka.topic_prefix
        self.raw_topic = raw_topic(self.exchange, prefix)
        self.dlq_topic = dlq_topic(self.exchange, prefix)
        self.gaps_topic = gaps_topic(prefix)
        producer_options = ProducerOptions(
            linger_ms=self.options.linger_ms, queue_max_messages=self.options.queue_max_messages
        )
        self._producer = DurableProducer(settings.kafka_config(), producer_options)
        self._deliveries = Deliveries(
            self._producer, metrics.delivery_latency.observe, self._delivery_failed
        )
        self.state = IngestState(on_new=self._deliveries.track)
        self._version = k2_version()
        self._debug = logging.getLogger(__name__).isEnabledFor(logging.DEBUG)
        self._failures_logged: set[str] = set()
        # The last trade handled per symbol (its match time is where a time-paged backfill
        # starts); after a restart, the match time of the last record in the topic.
        self._last_trade: dict[str, RawTrade] = {}
        self._resumed_exchange_us: dict[str, int] = {}
        # Sources whose ids reveal no gap: symbols whose next new trade closes a time-interval
        # gap (after a reconnect or a restart), with where the interval starts.
        self._ids_reveal_gaps = adapter.ids_per_symbol
        self._breaks: dict[str, Break] = {}
        self._newest_us: int | None = None
        self._newest_live: RawTrade | None = None  # the last trade of the last frame
        self._lag_sampled = 0.0
        self._client: FeedClientBase | None = None
        self._backfills: Backfills
        self._intervals = IntervalGaps(adapter, spec, self._interval_filled)
        self._raw_encoder: ConfluentEncoder  # set by prepare(), once each schema is registered
        self._dlq_encoder: ConfluentEncoder
        self._gap_encoder: ConfluentEncoder
        self._encode_raw: Callable[[Sequence[Any]], bytes]

    # ----------------------------------------------------------------------------------- setup

    async def prepare(self) -> tuple[FeedSpec, list[str]]:
        """Topics, schemas, the symbols and their resume points; raises before anything is
        produced."""
        mine = {self.raw_topic, self.dlq_topic, self.gaps_topic}
        TopicAdmin(self.settings.kafka_config()).ensure(
            [t for t in k2_topics(self.settings.kafka, self.settings.exchanges) if t.name in mine]
        )
        registry = SchemaRegistryClient(self.settings.registry_config())

        def encoder(
            name: str, topic: str, order: tuple[str, ...] | None = None
        ) -> ConfluentEncoder:
            schema_id = register_value_schema(registry, topic, schema_text(name))
            return ConfluentEncoder(name, schema_id, order)

        self._raw_encoder = encoder(
            self.adapter.schema_name, self.raw_topic, self.adapter.record_fields
        )
        self._encode_raw = self._raw_encoder.encode_values
        self._dlq_encoder = encoder("dlq", self.dlq_topic)
        self._gap_encoder = encoder("gap", self.gaps_topic)
        natives = await self.adapter.resolve_symbols(self.spec)
        points = read_resume_points(
            self.settings.kafka_config(),
            registry,
            self.raw_topic,
            self.adapter.record_trade_id,
            set(natives),
        )
        return self._resume_spec(points), natives

    def _resume_spec(self, points: dict[str, ResumePoint]) -> FeedSpec:
        last_ids = {s: p.last_trade_id for s, p in points.items() if p.last_trade_id is not None}
        for symbol, point in points.items():
            exchange_us = self.adapter.record_exchange_us(point.last_record)
            if exchange_us is None:
                continue
            self._resumed_exchange_us[symbol] = exchange_us
            if point.last_trade_id is None or not self._ids_reveal_gaps:
                self._breaks[symbol] = Break(exchange_us, point.last_trade_id)
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
        spec, natives = await self.prepare()
        client = self.adapter.client(spec)
        if not isinstance(client, FeedClientBase):  # pragma: no cover - every exchange's is one
            raise ExchangeError(f"{self.exchange}: the feed client has no run(sink)")
        self._client = client
        self.state.feed = client.stats
        self.metrics.watch_feed(client.stats.counts)
        self.metrics.watch_symbols(lambda: list(self.state.symbols.values()), client.last_seen)
        self.metrics.watch_lag(lambda: self._newest_us)
        self.metrics.symbols.labels(self.exchange).set(len(natives))
        self._backfills = Backfills(
            self.adapter,
            spec,
            self._backfilled,
            self.options.backfill_concurrency,
            self.options.backfill_pending_max,
            self.options.backfill_max_trades,
        )
        log.info(
            "ingest_started",
            exchange=self.exchange,
            shard=str(spec.shard),
            symbols=len(natives),
            version=self._version,
            git_sha=git_sha(),
            topic=self.raw_topic,
        )
        feed = asyncio.create_task(client.run(self, natives))
        helpers = [
            asyncio.create_task(self._poll_deliveries(stop)),
            asyncio.create_task(watch_replays(self, stop)),
        ]
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({feed, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        await client.close()
        outcomes = await asyncio.gather(feed, return_exceptions=True)
        undelivered = await self._finish(helpers)
        failure = outcomes[0]
        if isinstance(failure, Exception):
            log.error("ingest_feed_failed", exchange=self.exchange, error=str(failure))
            raise failure
        return undelivered

    async def _finish(self, helpers: list[asyncio.Task[None]]) -> int:
        """Gaps in progress, then what waits for the producer, then a bounded flush."""
        await self._intervals.stop(min(self.options.flush_timeout_s, _STOP_BACKFILL_S))
        await self._backfills.drain(min(self.options.flush_timeout_s, _STOP_BACKFILL_S))
        for job in await self._backfills.stop():
            self._publish_gap(Outcome(job, reason="the ingest stopped before backfilling it"))
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        try:
            async with asyncio.timeout(self.options.flush_timeout_s):
                await self._deliveries.wait_ready()
        except TimeoutError:
            pass
        undelivered = self._producer.close(self.options.flush_timeout_s) + self._deliveries.waiting
        self.metrics.queue_depth.labels(self.exchange).set(undelivered)
        log_summary(self, "ingest_stopped")
        if undelivered:
            log.error("kafka_delivery_incomplete", exchange=self.exchange, undelivered=undelivered)
        return undelivered

    def health(self) -> tuple[bool, str]:
        """``/healthz``: healthy while connected to the exchange and Kafka accepts records."""
        stats = self._producer.stats
        if not self.state.connected:
            return False, f"{self.exchange}: not connected to the exchange\n"
        if stats.last_error is not None and stats.failed:
            return False, f"{self.exchange}: kafka delivery failing: {stats.last_error}\n"
        return True, f"{self.exchange}: ok, {stats.delivered} delivered\n"

    async def _poll_deliveries(self, stop: asyncio.Event) -> None:
        """Serve delivery reports while the feed is quiet (a busy feed polls once per turn)."""
        waiting = self.metrics.backfill_waiting.labels(self.exchange)
        while not stop.is_set():
            busy = self._producer.queue_depth() > 0
            await asyncio.sleep(_POLL_BUSY_S if busy else _POLL_IDLE_S)
            self._deliveries.poll()
            now = time.monotonic()
            if now - self._lag_sampled >= _LAG_SAMPLE_S and self._newest_live is not None:
                self._lag_sampled = now
                self._sample_lag(self._newest_live)
                self._newest_live = None
            waiting.set(self._backfills.waiting)

    # ---------------------------------------------------------------------------- the sink

    def accept(self, events: list[FeedEvent]) -> bool:
        """The events of one frame, in order (called by the feed client, synchronously)."""
        trade = self._trade
        for event in events:
            kind = type(event)
            if kind is RawTrade:
                trade(event)  # type: ignore[arg-type]
            elif kind is Gap:
                self._gap(event)  # type: ignore[arg-type]
            elif kind is Malformed:
                self._dead_letter(event)  # type: ignore[arg-type]
            elif kind is Control:
                self._control(event)  # type: ignore[arg-type]
        last = events[-1]
        if type(last) is RawTrade:
            self._newest_live = last  # the receive lag is sampled from it off the hot path
        return not self._deliveries.blocked

    async def ready(self) -> None:
        await self._deliveries.wait_ready()

    def _sample_lag(self, raw: RawTrade) -> None:
        exchange_us = self.adapter.exchange_us(raw)
        if exchange_us is None:
            return
        if self._newest_us is None or exchange_us > self._newest_us:
            self._newest_us = exchange_us
        self.metrics.receive_lag.observe(max(0.0, (raw.envelope.received_us - exchange_us) / 1e6))

    def _trade(self, raw: RawTrade, backfilled: bool = False) -> None:
        """One trade to one raw record (the hot path: a few microseconds per trade)."""
        symbol = raw.native_symbol
        counts = self.state.symbols.get(symbol) or self.state.of(symbol)
        counts.received += 1
        if backfilled:
            counts.backfilled += 1
        elif raw.trade_key is None or not self._ids_reveal_gaps:
            if self._breaks:
                self._close_break(raw)
            self._last_trade[symbol] = raw
        else:
            self._last_trade[symbol] = raw
        adapter = self.adapter
        message_id = adapter.message_id(raw)
        if self._debug:  # per trade: skip even building the call when DEBUG is off
            log.debug("ingest_trade", exchange=self.exchange, symbol=symbol, id=message_id)
        value = self._encode_raw(adapter.record_values(raw, message_id, self._version))
        self._deliveries.add(self.raw_topic, value, counts.key, counts, raw.envelope.received_us)

    def _delivery_failed(self, counts: SymbolCounts | None, records: int, err: Any) -> None:
        """ERROR once per kind of refusal (each refused record is counted either way)."""
        error = str(err)
        level = log.debug if error in self._failures_logged else log.error
        self._failures_logged.add(error)
        level(
            "kafka_delivery_failed",
            exchange=self.exchange,
            symbol=None if counts is None else counts.symbol,
            records=records,
            error=error,
        )

    def _dead_letter(self, bad: Malformed) -> None:
        """The frame to the DLQ; the trades it held are lost to the symbols it names (all of
        them when it names none), a break where ids cannot reveal it."""
        if self._last_trade and not self._ids_reveal_gaps:
            named = [symbol for symbol in self._last_trade if symbol in bad.raw]
            self._break(named or list(self._last_trade))
        self.state.dead_lettered += 1
        self.metrics.dead_lettered.labels(self.exchange).inc()
        record = dead_letter_record(self.exchange, bad, self._version)
        value = self._dlq_encoder.encode(record)
        self._deliveries.add(self.dlq_topic, value, None, None, bad.envelope.received_us)

    def _control(self, event: Control) -> None:
        client = self._client
        if client is None or event.kind not in (ControlKind.CONNECTED, ControlKind.DISCONNECTED):
            return
        lanes = client.lanes
        self.state.connected = bool(lanes) and all(lane.connected for lane in lanes)
        self.metrics.connected.labels(self.exchange).set(int(self.state.connected))
        self.metrics.connections.labels(self.exchange).set(client.connections_open())
        if event.kind == ControlKind.DISCONNECTED:
            index = event.detail.get("lane")
            self._break(set(lanes[index].symbols) if isinstance(index, int) else set())

    def _break(self, symbols: Collection[str]) -> None:
        """The feed of ``symbols`` broke (a disconnect, a frame lost to the dead letters): where
        ids cannot tell what it lost, each one's next new trade closes a time interval."""
        self._breaks.update(
            (symbol, Break(exchange_us, raw.trade_key))
            for symbol, raw in self._last_trade.items()
            if (raw.trade_key is None or not self._ids_reveal_gaps)
            and symbol in symbols
            and (exchange_us := self.adapter.exchange_us(raw)) is not None
        )

    # ------------------------------------------------------------------------------------ gaps

    def _gap(self, gap: Gap) -> None:
        """Queue an id range for REST backfill; the feed reads on meanwhile."""
        symbol = gap.native_symbol
        self.state.of(symbol).gaps += 1
        self.metrics.gaps.labels(self.exchange, symbol).inc()
        self._backfills.submit(GapJob(gap, self._exchange_us_before(symbol)))

    async def _backfilled(self, outcome: Outcome) -> None:
        for raw in outcome.trades:
            self._trade(raw, backfilled=True)
        self._publish_gap(outcome)
        if self._deliveries.blocked:
            await self._deliveries.wait_ready()

    def _exchange_us_before(self, symbol: str) -> int | None:
        """Match time of the last trade handled for ``symbol`` (or of the topic's last one)."""
        last = self._last_trade.get(symbol)
        if last is not None:
            return self.adapter.exchange_us(last)
        return self._resumed_exchange_us.get(symbol)

    def _publish_gap(self, outcome: Outcome) -> None:
        gap, unfilled = outcome.job.gap, outcome.unfilled
        reason = outcome.reason
        if unfilled and reason is None:
            reason = f"exchange history returned {outcome.missing - unfilled} of {outcome.missing}"
        filled = unfilled == 0
        logger = log.info if filled else log.warning
        logger(
            "ingest_gap_backfilled" if filled else "ingest_gap_unfilled",
            exchange=self.exchange,
            symbol=gap.native_symbol,
            first_missing=gap.first_missing,
            last_missing=gap.last_missing,
            recovered=len(outcome.trades),
            unfilled=unfilled,
            detected_by=gap.detected_by,
            reason=reason,
        )
        if unfilled:
            self.metrics.gap_trades_unfilled.labels(self.exchange, gap.native_symbol).inc(unfilled)
        span: dict[str, int | None] = {
            "first_missing_id": gap.first_missing,
            "last_missing_id": gap.last_missing,
        }
        self._emit_gap_record(
            gap.native_symbol, span, gap.detected_by, filled, len(outcome.trades), reason
        )

    def _emit_gap_record(
        self,
        symbol: str,
        span: dict[str, int | None],
        detected_by: str,
        backfilled: bool,
        count: int,
        reason: str | None,
    ) -> None:
        now_us = time.time_ns() // 1000
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
            "detected_us": now_us,
            "k2_version": self._version,
        }
        value = self._gap_encoder.encode(record)
        self._deliveries.add(self.gaps_topic, value, symbol.encode(), None, now_us)

    def _close_break(self, raw: RawTrade) -> None:
        """The first new trade after a break closes its time interval, read from the exchange's
        history beside the feed (:mod:`k2.ingest.intervals`)."""
        if raw.snapshot or raw.native_symbol not in self._breaks:
            return
        exchange_us = self.adapter.exchange_us(raw)
        if exchange_us is None:
            return
        since = self._breaks.pop(raw.native_symbol)
        symbol = raw.native_symbol
        self.metrics.gaps.labels(self.exchange, symbol).inc()
        self.state.of(symbol).gaps += 1
        interval = Interval(symbol, since.exchange_us, since.trade_id, exchange_us, raw.trade_key)
        self._intervals.submit(interval)

    async def _interval_filled(self, interval: Interval, found: IntervalFill) -> None:
        """Deliver what the history held of an interval, then its gap event."""
        for trade in found.trades:
            self._trade(trade, backfilled=True)
        logger = log.info if found.complete else log.warning
        logger(
            "ingest_gap_backfilled" if found.complete else "ingest_gap_unfilled",
            exchange=self.exchange,
            symbol=interval.symbol,
            from_us=interval.from_us,
            to_us=interval.to_us,
            recovered=len(found.trades),
            reason=found.reason,
        )
        span: dict[str, int | None] = {"from_us": interval.from_us, "to_us": interval.to_us}
        self._emit_gap_record(
            interval.symbol, span, "reconnect", found.complete, len(found.trades), found.reason
        )
        if self._deliveries.blocked:
            await self._deliveries.wait_ready()

    @property
    def producer(self) -> DurableProducer:
        return self._producer


# ------------------------------------------------------------------------------------ entry


def run_ingest(settings: Settings, exchange: str, port: int | None = None) -> int:
    """``k2 ingest``: run until SIGTERM/SIGINT; the number of records left undelivered.

    Metrics are served on ``port``, by default the exchange's
    :func:`~k2.exchanges.factory.metrics_port`. With the exchange's ``books`` setting on, the
    same process captures its order book too (:mod:`k2.ingest.books`).
    """
    adapter = adapter_for(exchange, settings.ingest)
    metrics = Metrics(f"ingest-{exchange}")
    ingest_metrics = IngestMetrics(metrics, exchange)
    spec = feed_spec(settings.ingest, adapter)
    service = IngestService(settings, adapter, spec, ingest_metrics)
    capture = None
    if adapter.settings.books:
        capture = BookCapture(
            adapter.book_client(spec),
            settings.kafka_config(),
            settings.registry_config(),
            k2_topics(settings.kafka, (), books=(exchange,)),
            settings.kafka.topic_prefix,
            ProducerOptions(linger_ms=settings.ingest.linger_ms),
            settings.ingest.flush_timeout_s,
        )
        metrics.registry.register(BookCounters(exchange, capture.stats))
    server = serve_metrics(
        metrics,
        settings.stack.host,
        metrics_port(settings.ingest, exchange) if port is None else port,
        service.health,
    )
    log.info("ingest_metrics_serving", exchange=exchange, port=server.port)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(_until_signalled(service, capture))
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


async def _until_signalled(service: IngestService, capture: BookCapture | None) -> int:
    """Run the trade ingest (and the book capture) until a signal; what both left undelivered.
    Either one failing stops the other."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    if capture is None:
        return await service.run(stop)

    async def stopping_the_other(run: Awaitable[int]) -> int:
        try:
            return await run
        finally:
            stop.set()

    outcomes = await asyncio.gather(
        stopping_the_other(service.run(stop)),
        stopping_the_other(capture.run(stop)),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return sum(outcome for outcome in outcomes if isinstance(outcome, int))
