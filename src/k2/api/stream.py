"""Live trades: the raw Kafka topics, normalised as Silver normalises them, pushed to WebSockets.

One consumer per API process reads every configured exchange's raw topic (no consumer group, no
commits: it only watches) from the end the topics had when the first client subscribed. Each
record is decoded by its writer schema and normalised with the exchange's own
``trade_from_record``, the function Silver's SQL is tested against, so a streamed trade has the
very values Gold will hold. A symbol's records share one partition, so its trades arrive in the
order the ingest delivered them; a trade seen twice (same ``message_id``, for example a
reconnect re-send) is pushed once.

Messages: ``{"type": "trades", "trades": [...]}``, the series' trades of one read from Kafka in
order (one frame for many trades keeps up with bursts). Joining history: a client's first
message is ``{"type": "start", ...}`` with the first trade it will get and an ``until`` token;
``GET /v1/trades?...&until=<token>`` returns every trade before that one in the chronological
order, and says ``until_landed`` once Gold holds the first streamed trade (then everything
before it has landed too). History then stream: no gap, no duplicate.

A client that falls ``stream_queue_max`` messages behind is disconnected (close code 1013) rather
than silently skipped, so it can join again from history. A partition whose leader is not settled
when the consumer starts (a topic just created, a broker down) is read from its end once it is;
if the consumer itself fails, its clients are disconnected (1011) and the next one starts anew.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import typing
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.serialization import MessageField, SerializationContext

from k2.api.metrics import ApiMetrics
from k2.api.params import encode_until
from k2.api.queries import TradeKey
from k2.domain import Trade, micros_from_datetime
from k2.errors import K2Error
from k2.exchanges import exchange_entry
from k2.lake.export import decimal_text, time_text
from k2.transport.offsets import settling
from k2.transport.topics import raw_topic

log = structlog.get_logger(__name__)

_POLL_S = 0.05
_BATCH = 1000
_READY_TIMEOUT_S = 30.0
_RECHECK_S = 5.0
_RECHECK_PENDING_S = 0.5
_END_FIRST_S = 10.0
_END_AGAIN_S = 1.0
_SEEN_PER_SYMBOL = 10_000


@dataclass(frozen=True)
class Closing:
    """Queued to end a subscriber's stream with this WebSocket close code and reason."""

    code: int
    reason: str


TOO_SLOW = Closing(1013, "client too slow; join again")
FAILED = Closing(1011, "live stream failed; join again")


def _formatter(annotation: Any) -> Callable[[Any], Any] | None:
    kinds = typing.get_args(annotation) or (annotation,)
    if Decimal in kinds:
        return decimal_text
    if datetime in kinds:
        return time_text
    return None


# Derived once from the unified trade's fields: (name, how its value is written).
_FIELDS = tuple((name, _formatter(kind)) for name, kind in typing.get_type_hints(Trade).items())


def trade_message(trade: Trade) -> dict[str, Any]:
    """A trade as the API writes it: decimals as exact text, times RFC 3339 with µs."""
    out = {}
    for name, write in _FIELDS:
        value = getattr(trade, name)
        out[name] = write(value) if write is not None and value is not None else value
    return out


def _as_written(record: dict[str, Any]) -> dict[str, Any]:
    """The record with the values the ingest wrote: Avro's timestamp-micros fields come back
    from the decoder as datetimes, the exchange's ``trade_from_record`` reads them as µs."""
    return {
        name: micros_from_datetime(value) if isinstance(value, datetime) else value
        for name, value in record.items()
    }


def trade_key(trade: Trade) -> TradeKey:
    """The trade's place in the API's chronological order (see :mod:`k2.api.queries`)."""
    seq = int(trade.trade_id) if trade.trade_id and trade.trade_id.lstrip("-").isdigit() else -1
    return TradeKey(micros_from_datetime(trade.exchange_ts), seq, trade.message_id)


@dataclass(eq=False)
class Subscriber:
    """One WebSocket client's queue of JSON texts for one (exchange, symbol)."""

    exchange: str
    symbol: str
    queue: asyncio.Queue[Any]
    started: bool = False
    dropped: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class LiveTrades:
    """The process's live trade hub (see the module doc). Started by the first subscriber."""

    def __init__(
        self,
        kafka: Mapping[str, str],
        registry: Mapping[str, str],
        exchanges: Sequence[str],
        topic_prefix: str,
        queue_max: int,
        metrics: ApiMetrics,
    ) -> None:
        """Live trades of ``exchanges`` from their raw topics (named with ``topic_prefix``),
        read with the Kafka and registry client settings ``kafka`` and ``registry``; a client
        waits on at most ``queue_max`` messages (``api.stream_queue_max``)."""
        self._kafka = dict(kafka)
        self._registry = dict(registry)
        self._queue_max = queue_max
        self._metrics = metrics
        self.topics = {raw_topic(name, topic_prefix): name for name in exchanges}
        self._subscribers: dict[tuple[str, str], set[Subscriber]] = {}
        self._seen: dict[tuple[str, str], OrderedDict[str, None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self.error: str | None = None
        self._warned: set[str] = set()
        self._pending_end: set[tuple[str, int]] = set()

    # ------------------------------------------------------------------ clients

    async def subscribe(self, exchange: str, symbol: str) -> Subscriber:
        """A subscriber that receives every trade of the series read after this call.

        Raises :class:`K2Error` when Kafka cannot be reached.
        """
        self._loop = asyncio.get_running_loop()
        self._ensure_started()
        ready = await asyncio.to_thread(self._ready.wait, _READY_TIMEOUT_S)
        if not ready or self.error is not None:
            raise K2Error(f"live stream unavailable: {self.error or 'Kafka did not answer'}")
        subscriber = Subscriber(exchange, symbol, asyncio.Queue(self._queue_max))
        self._subscribers.setdefault((exchange, symbol), set()).add(subscriber)
        self._metrics.stream_clients.inc()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        group = self._subscribers.get((subscriber.exchange, subscriber.symbol), set())
        if subscriber in group:
            group.discard(subscriber)
            self._metrics.stream_clients.dec()

    def _deliver(self, trades: list[Trade]) -> None:
        """On the event loop: one ``trades`` message per series with subscribers, holding
        that series' trades of one poll in order."""
        series: dict[tuple[str, str], list[Trade]] = {}
        for trade in trades:
            if (trade.exchange, trade.symbol) in self._subscribers:
                series.setdefault((trade.exchange, trade.symbol), []).append(trade)
        for key, batch in series.items():
            group = self._subscribers.get(key)
            if not group:
                continue
            text = json.dumps({"type": "trades", "trades": [trade_message(t) for t in batch]})
            for subscriber in list(group):
                self._offer(subscriber, batch[0], text)

    def _offer(self, subscriber: Subscriber, first: Trade, text: str) -> None:
        if subscriber.dropped:
            return
        if not subscriber.started:
            subscriber.started = True
            start = {
                "type": "start",
                "exchange": first.exchange,
                "symbol": first.symbol,
                "first_trade_id": first.trade_id,
                "first_message_id": first.message_id,
                "first_exchange_ts": time_text(first.exchange_ts),
                "until": encode_until(trade_key(first)),
            }
            subscriber.queue.put_nowait(json.dumps(start))
        if subscriber.queue.qsize() >= subscriber.queue.maxsize - 1:
            subscriber.dropped = True
            self._metrics.stream_dropped_clients.inc()
            log.warning("stream_client_dropped", exchange=first.exchange, symbol=first.symbol)
            subscriber.queue.put_nowait(TOO_SLOW)
            return
        subscriber.queue.put_nowait(text)

    # ---------------------------------------------------------------- consumer

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None or (not self._thread.is_alive() and self.error is not None):
                self._ready.clear()
                self.error = None
                self._pending_end.clear()
                self._thread = threading.Thread(target=self._run, name="live-trades", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            consumer, decode = self._open()
        except Exception as exc:  # noqa: BLE001 - librdkafka and the registry client raise their own types
            self._fail(exc)
            return
        try:
            assigned = self._assign(consumer, set())
            self._ready.set()
            log.info("stream_consumer_started", partitions=len(assigned))
            checked = time.monotonic()
            while not self._stop.is_set():
                recheck = _RECHECK_PENDING_S if self._pending_end else _RECHECK_S
                if time.monotonic() - checked > recheck:
                    assigned = self._assign(consumer, assigned)
                    checked = time.monotonic()
                self._poll(consumer, decode)
        except Exception as exc:  # noqa: BLE001 - librdkafka raises its own types
            self._fail(exc)
        finally:
            consumer.close()

    def _fail(self, exc: Exception) -> None:
        """The consumer cannot go on: waiting subscribers get the error, connected ones are
        closed (they join again from history), and the next subscriber starts a new one."""
        self.error = str(exc)
        self._ready.set()
        log.error("stream_consumer_failed", error=str(exc))
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._close_all)

    def _close_all(self) -> None:
        for group in self._subscribers.values():
            for subscriber in group:
                subscriber.dropped = True
                with suppress(asyncio.QueueFull):
                    subscriber.queue.put_nowait(FAILED)

    def _open(self) -> tuple[Any, Any]:
        from confluent_kafka.schema_registry import (  # noqa: PLC0415 - loads with the first live client
            SchemaRegistryClient,
        )
        from confluent_kafka.schema_registry.avro import (  # noqa: PLC0415 - loads with the first live client
            AvroDeserializer,
        )

        consumer = Consumer(
            {
                **self._kafka,
                "group.id": f"k2-api-live-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "fetch.wait.max.ms": 10,
                "log_level": 3,
            }
        )
        decode = AvroDeserializer(SchemaRegistryClient(dict(self._registry)))
        return consumer, decode

    def _assign(self, consumer: Any, assigned: set[tuple[str, int]]) -> set[tuple[str, int]]:
        """Add the raw topics' partitions not yet read: from their end at the first call (only
        what arrives from now on), from their start when they appear later (all of it is new).

        A partition known at the first call whose end the broker cannot tell yet (a topic
        created a moment ago, a broker that is down) is left out and asked
        again at the next check, still to be read from its end.
        """
        metadata = consumer.list_topics(timeout=10)
        first = not self._ready.is_set()
        new = []
        for topic in self.topics:
            found = metadata.topics.get(topic)
            if found is None or found.error is not None:
                continue
            for partition in found.partitions:
                key = (topic, partition)
                if key in assigned:
                    continue
                if first or key in self._pending_end:
                    # Asked briefly again while pending: the other partitions are not held up.
                    wait_s = _END_FIRST_S if first else _END_AGAIN_S
                    high = self._end(consumer, topic, partition, wait_s)
                    if high is None:
                        self._pending_end.add(key)
                        continue
                    self._pending_end.discard(key)
                    new.append(TopicPartition(topic, partition, high))
                else:
                    new.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
        if new:
            consumer.incremental_assign(new)
        return assigned | {(tp.topic, tp.partition) for tp in new}

    def _end(self, consumer: Any, topic: str, partition: int, wait_s: float) -> int | None:
        """The partition's high watermark, or None while its leader settles."""
        try:
            return int(
                consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=wait_s)[1]
            )
        except KafkaException as exc:
            if not settling(exc):
                raise
            if (topic, partition) not in self._pending_end:
                log.warning(
                    "stream_partition_pending", topic=topic, partition=partition, error=str(exc)
                )
            return None

    def _poll(self, consumer: Any, decode: Any) -> None:
        messages = consumer.consume(_BATCH, timeout=_POLL_S)
        trades = []
        for message in messages:
            if message.error() is not None or message.value() is None:
                continue
            exchange = self.topics.get(message.topic())
            if exchange is None:
                continue
            try:
                record = decode(
                    message.value(), SerializationContext(message.topic(), MessageField.VALUE)
                )
                trade = (
                    exchange_entry(exchange)
                    .module("normalise")
                    .trade_from_record(_as_written(record))
                )
            except Exception as exc:  # noqa: BLE001 - undecodable or invalid records are Bronze's and Silver's
                self._warn_once(type(exc).__name__, exc)
                continue
            if self._first_time(trade):
                trades.append(trade)
                self._metrics.stream_trades.labels(exchange).inc()
        if trades and self._loop is not None:
            self._loop.call_soon_threadsafe(self._deliver, trades)

    def _first_time(self, trade: Trade) -> bool:
        seen = self._seen.setdefault((trade.exchange, trade.symbol), OrderedDict())
        if trade.message_id in seen:
            return False
        seen[trade.message_id] = None
        if len(seen) > _SEEN_PER_SYMBOL:
            seen.popitem(last=False)
        return True

    def _warn_once(self, kind: str, exc: Exception) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning("stream_record_skipped", kind=kind, error=str(exc))
