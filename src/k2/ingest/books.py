"""The book capture: every book message of one exchange's book feed, durable in Kafka.

The book feed (:mod:`k2.exchanges.bookfeed`) calls :meth:`BookCapture.accept` once per frame,
synchronously, as the trade feed calls the ingest service:

- a book message becomes one Avro record (``book_raw``, Confluent framing) on
  ``market.crypto.books.<exchange>.raw``, keyed by the symbol, with its levels as sent and K2's
  verdict on it (verified, or why not);
- a malformed frame becomes a dead letter on ``market.crypto.books.<exchange>.dlq``;
- an interval in which a symbol's book was unverified becomes a gap event on
  ``market.crypto.gaps`` with ``stream`` = ``book`` once a snapshot verifies the book again (or
  the capture stops while it is still unverified), so coverage reports books beside trades.

Book messages are never backfilled (no exchange keeps a history of its book). At start-up the
last record of each symbol is read back from the topic: from its receive time until this run's
first snapshot of the symbol the book was not captured, a gap event with ``detected_by``
``restarted``. A symbol never captured before starts at its first snapshot. Records wait in the
producer's bounded queue like trades do, and a full queue stops the feed reading.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import structlog
from confluent_kafka.schema_registry import SchemaRegistryClient

from k2.exchanges.base import Control, ControlKind, FeedEvent, Malformed
from k2.exchanges.bookfeed import BookFeed
from k2.exchanges.booksync import BookGap, BookUpdate
from k2.ingest.avro import ConfluentEncoder, dead_letter_record
from k2.ingest.delivery import Deliveries, SymbolCounts
from k2.ingest.resume import read_resume_points
from k2.schemas import schema_text
from k2.schemas.registry import register_value_schema
from k2.transport.producer import DurableProducer, ProducerOptions
from k2.transport.topics import TopicAdmin, TopicSpec, book_dlq_topic, book_topic, gaps_topic
from k2.version import k2_version

log = structlog.get_logger(__name__)

_POLL_S = 0.05


class BookCapture:
    """One exchange's book feed into Kafka. Build it, then ``await run(stop)``."""

    def __init__(
        self,
        feed: BookFeed,
        kafka_config: dict[str, str],
        registry_config: dict[str, str],
        topics: list[TopicSpec],
        prefix: str = "",
        producer_options: ProducerOptions | None = None,
        flush_timeout_s: float = 10.0,
    ) -> None:
        self.feed = feed
        self.exchange = feed.exchange
        self.book_topic = book_topic(self.exchange, prefix)
        self.dlq_topic = book_dlq_topic(self.exchange, prefix)
        self.gaps_topic = gaps_topic(prefix)
        self._kafka_config = kafka_config
        self._registry_config = registry_config
        self._topics = [
            t for t in topics if t.name in (self.book_topic, self.dlq_topic, self.gaps_topic)
        ]
        self._producer = DurableProducer(kafka_config, producer_options or ProducerOptions())
        self._deliveries = Deliveries(self._producer, lambda _: None, self._delivery_failed)
        self._flush_timeout_s = flush_timeout_s
        self._version = k2_version()
        self.symbols: dict[str, SymbolCounts] = {}
        self.dead_lettered = 0
        self.gaps = 0
        self._failures_logged: set[str] = set()
        self._book: ConfluentEncoder
        self._dlq: ConfluentEncoder
        self._gap: ConfluentEncoder

    def prepare(self) -> None:
        """Topics and schemas; raises before anything is produced."""
        TopicAdmin(self._kafka_config).ensure(self._topics)
        registry = SchemaRegistryClient(self._registry_config)

        def encoder(name: str, topic: str) -> ConfluentEncoder:
            return ConfluentEncoder(name, register_value_schema(registry, topic, schema_text(name)))

        self._book = encoder("book_raw", self.book_topic)
        self._dlq = encoder("dlq", self.dlq_topic)
        self._gap = encoder("gap", self.gaps_topic)

    def stats(self) -> dict[str, int]:
        """The feed's book counts, the records delivered and failed, and the books unverified
        now (:class:`~k2.observability.metrics.BookCounters` reads them at scrape time)."""
        counts = list(self.symbols.values())
        return {
            **self.feed.book_stats,
            "records:delivered": sum(c.delivered for c in counts),
            "records:failed": sum(c.failed for c in counts),
            "unverified": len(self.feed.coverage.unverified()),
        }

    async def run(self, stop: asyncio.Event, natives: list[str] | None = None) -> int:
        """Capture until ``stop`` is set; returns the number of records not delivered."""
        self.prepare()
        if natives is None:
            natives = await self.feed.list_symbols(self.feed.options.symbols)
        self._resume(natives)
        log.info(
            "book_capture_started",
            exchange=self.exchange,
            symbols=len(natives),
            depth=self.feed.depth,
            topic=self.book_topic,
        )
        running = asyncio.create_task(self.feed.run(self, natives))
        poller = asyncio.create_task(self._poll(stop))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        await self.feed.close()
        (outcome,) = await asyncio.gather(running, return_exceptions=True)
        self.accept(self.feed.held())  # what still waited for a snapshot, as unverified
        for gap in self.feed.coverage.close_all(time.time_ns() // 1_000):
            self._publish_gap(gap)
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        undelivered = await self._flush()
        log.info(
            "book_capture_stopped",
            exchange=self.exchange,
            messages=sum(counts.received for counts in self.symbols.values()),
            delivered=sum(counts.delivered for counts in self.symbols.values()),
            dead_lettered=self.dead_lettered,
            gaps=self.gaps,
            resyncs=self.feed.book_stats["resyncs"],
        )
        if isinstance(outcome, Exception):
            log.error("book_capture_failed", exchange=self.exchange, error=str(outcome))
            raise outcome
        return undelivered

    def _resume(self, natives: list[str]) -> None:
        """Each symbol's book was not captured from its last record in the topic (the previous
        run's) until this run's first snapshot of it: that interval is a gap too."""
        registry = SchemaRegistryClient(self._registry_config)
        points = read_resume_points(
            self._kafka_config, registry, self.book_topic, _no_trade_id, natives
        )
        for symbol, point in points.items():
            self.feed.coverage.resume(symbol, point.last_received_us)
        if points:
            log.info("book_capture_resumed", exchange=self.exchange, symbols=len(points))

    async def _poll(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(_POLL_S)
            self._deliveries.poll()

    async def _flush(self) -> int:
        try:
            async with asyncio.timeout(self._flush_timeout_s):
                await self._deliveries.wait_ready()
        except TimeoutError:
            pass
        undelivered = self._producer.close(self._flush_timeout_s) + self._deliveries.waiting
        if undelivered:
            log.error("kafka_delivery_incomplete", exchange=self.exchange, undelivered=undelivered)
        return undelivered

    # --- the sink --------------------------------------------------------------------------

    def accept(self, events: list[FeedEvent]) -> bool:
        """The events of one frame, in order (called by the book feed, synchronously)."""
        for event in events:
            if isinstance(event, BookUpdate):
                self._message(event)
            elif isinstance(event, BookGap):
                self._publish_gap(event)
            elif isinstance(event, Malformed):
                self._dead_letter(event)
            elif isinstance(event, Control) and event.kind == ControlKind.DISCONNECTED:
                log.debug("book_feed_disconnected", exchange=self.exchange, **event.detail)
        return not self._deliveries.blocked

    async def ready(self) -> None:
        await self._deliveries.wait_ready()

    def _counts(self, symbol: str) -> SymbolCounts:
        counts = self.symbols.get(symbol)
        if counts is None:
            counts = self.symbols[symbol] = SymbolCounts(symbol)
            self._deliveries.track(counts)
        return counts

    def _message(self, update: BookUpdate) -> None:
        counts = self._counts(update.native_symbol)
        counts.received += 1
        value = self._book.encode(book_record(update, self._version, self.feed.cut_depth))
        received_us = update.envelope.received_us
        self._deliveries.add(self.book_topic, value, counts.key, counts, received_us)

    def _dead_letter(self, bad: Malformed) -> None:
        self.dead_lettered += 1
        record = dead_letter_record(self.exchange, bad, self._version)
        self._deliveries.add(
            self.dlq_topic, self._dlq.encode(record), None, None, bad.envelope.received_us
        )

    def _publish_gap(self, gap: BookGap) -> None:
        self.gaps += 1
        log.info(
            "book_gap_closed",
            exchange=self.exchange,
            symbol=gap.native_symbol,
            reason=str(gap.reason),
            unverified_s=round((gap.to_us - gap.from_us) / 1e6, 3),
        )
        now_us = time.time_ns() // 1_000
        record = {
            "exchange": self.exchange,
            "exchange_symbol": gap.native_symbol,
            "from_us": gap.from_us,
            "to_us": gap.to_us,
            "detected_by": str(gap.reason),
            "backfilled": False,
            "reason": gap.detail or None,
            "detected_us": now_us,
            "k2_version": self._version,
            "stream": "book",
        }
        key = gap.native_symbol.encode()
        self._deliveries.add(self.gaps_topic, self._gap.encode(record), key, None, now_us)

    def _delivery_failed(self, counts: SymbolCounts | None, records: int, err: Any) -> None:
        error = str(err)
        level = log.debug if error in self._failures_logged else log.error
        self._failures_logged.add(error)
        level("kafka_delivery_failed", exchange=self.exchange, records=records, error=error)


def _no_trade_id(record: Mapping[str, Any]) -> None:
    """Book records carry no trade id: only their receive time is resumed from."""
    return None


def book_record(update: BookUpdate, k2_version: str, depth: int | None = None) -> dict[str, Any]:
    """The ``book_raw`` record of one book message; ``depth`` is what the feed cuts its books
    to (:attr:`~k2.exchanges.bookfeed.BookFeed.cut_depth`)."""
    verdict, envelope = update.verdict, update.envelope
    message_id = (
        f"{update.exchange}:{update.native_symbol}:{envelope.connection_id}:{envelope.position}"
    )
    if update.part:
        message_id += f":{update.part}"
    return {
        "exchange": update.exchange,
        "exchange_symbol": update.native_symbol,
        "snapshot": update.snapshot,
        "bids": [(level.price_text, level.size_text) for level in update.bids],
        "asks": [(level.price_text, level.size_text) for level in update.asks],
        "exchange_us": update.exchange_us,
        "sequence": update.sequence,
        "sequence_from": update.sequence_from,
        "checksum": update.checksum,
        "verified": verdict.verified,
        "outcome": str(verdict.outcome),
        "reason": None if verdict.reason is None else str(verdict.reason),
        "expected": verdict.expected,
        "received": verdict.received,
        "received_us": envelope.received_us,
        "connection_id": envelope.connection_id,
        "position": envelope.position,
        "protocol": envelope.protocol,
        "message_id": message_id,
        "k2_version": k2_version,
        "depth": depth,
    }
