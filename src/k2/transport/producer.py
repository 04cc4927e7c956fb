"""The Kafka producer every K2 service writes with: durable, ordered per key, bounded in memory.

Idempotence with ``acks=all`` means a retried batch is never written twice and never reordered;
lz4 batches by linger and size. Nothing is flushed per message: delivery is reported by callbacks
(counted in :class:`DeliveryStats`), and :meth:`DurableProducer.close` flushes once, with a bounded
timeout, reporting what (if anything) was not delivered.

Memory is bounded by librdkafka's local queue (``queue.buffering.max.messages`` and ``...kbytes``).
When the broker is unreachable that queue fills; :meth:`DurableProducer.try_produce` then refuses
the record, so the caller stops reading from its source and retries later instead of buffering
without limit (backpressure).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, Message, Producer

DeliveryHook = Callable[[Message | None, KafkaError | None, object], None]


@dataclass
class DeliveryStats:
    """Counters updated by delivery callbacks (on the producer's poll thread)."""

    produced: int = 0
    delivered: int = 0
    failed: int = 0
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def in_flight(self) -> int:
        return self.produced - self.delivered - self.failed


@dataclass(frozen=True)
class ProducerOptions:
    linger_ms: int = 20
    batch_bytes: int = 1_000_000
    queue_max_messages: int = 200_000
    queue_max_kbytes: int = 256 * 1024
    delivery_timeout_ms: int = 600_000  # keep retrying through a broker restart


class DurableProducer:
    """A confluent-kafka producer with K2's durability settings and delivery accounting."""

    def __init__(
        self,
        kafka_config: dict[str, str],
        options: ProducerOptions | None = None,
        on_delivery: DeliveryHook | None = None,
    ) -> None:
        opts = options or ProducerOptions()
        self.stats = DeliveryStats()
        self._hook = on_delivery
        self._producer = Producer(
            {
                **kafka_config,
                "enable.idempotence": True,
                "acks": "all",
                "compression.type": "lz4",
                "linger.ms": opts.linger_ms,
                "batch.size": opts.batch_bytes,
                "queue.buffering.max.messages": opts.queue_max_messages,
                "queue.buffering.max.kbytes": opts.queue_max_kbytes,
                "delivery.timeout.ms": opts.delivery_timeout_ms,
                "log_level": 3,
            }
        )

    def _delivered(self, err: KafkaError | None, msg: Message, opaque: object) -> None:
        with self.stats.lock:
            if err is None:
                self.stats.delivered += 1
            else:
                self.stats.failed += 1
                self.stats.last_error = str(err)
        if self._hook is not None:
            self._hook(msg if err is None else None, err, opaque)

    def try_produce(
        self, topic: str, value: bytes, key: bytes | None = None, opaque: object = None
    ) -> bool:
        """Queue one record; False (nothing queued) while the bounded local queue is full.

        Delivery is reported later, through the callback. A caller that gets False stops
        reading from its source and retries after a short wait (backpressure).
        """
        try:
            self._producer.produce(
                topic,
                value=value,
                key=key,
                on_delivery=lambda err, msg: self._delivered(err, msg, opaque),
            )
        except BufferError:
            self._producer.poll(0)
            return False
        with self.stats.lock:
            self.stats.produced += 1
        self._producer.poll(0)
        return True

    def hot_produce(self) -> Callable[..., None]:
        """The underlying ``produce(topic, value, key, on_delivery=, timestamp=)`` for a hot
        path that counts itself: it adds what it produced and what was delivered with
        :meth:`counted`, and failures with :meth:`acknowledged`, and polls once per batch.

        It raises BufferError (nothing queued) while the bounded local queue is full, and
        KafkaException when librdkafka refuses the record outright (larger than
        ``message.max.bytes``): the caller counts such a record produced, and failed.
        """
        produce: Callable[..., None] = self._producer.produce
        return produce

    def send(self, topic: str, value: bytes, key: bytes | None) -> bool:
        """Queue one record without any callback and without a poll (the benchmark's ceiling:
        librdkafka alone). False (nothing queued) while the bounded local queue is full."""
        try:
            self._producer.produce(topic, value, key)
        except BufferError:
            return False
        self.stats.produced += 1
        return True

    def counted(self, produced: int, delivered: int) -> None:
        """Add records a :meth:`hot_produce` caller produced and saw delivered."""
        with self.stats.lock:
            self.stats.produced += produced
            self.stats.delivered += delivered

    def acknowledged(self, count: int, error: KafkaError | None) -> None:
        """Count ``count`` records acknowledged (or refused, with ``error``) by one report."""
        with self.stats.lock:
            if error is None:
                self.stats.delivered += count
            else:
                self.stats.failed += count
                self.stats.last_error = str(error)

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serve delivery callbacks."""
        self._producer.poll(timeout_s)

    def queue_depth(self) -> int:
        """Records queued locally and not yet acknowledged by the broker (librdkafka also
        counts the delivery reports waiting for a poll)."""
        return len(self._producer)

    def close(self, timeout_s: float) -> int:
        """Flush with a bounded wait; the number of records still undelivered."""
        deadline = time.monotonic() + timeout_s
        remaining = len(self._producer)
        while remaining and time.monotonic() < deadline:
            remaining = self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        return int(remaining)
