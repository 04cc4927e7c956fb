"""A partition's offsets, asked of the broker that leads it.

While a partition's leader is being elected (a topic created a moment ago, a broker that stopped
or restarted), the broker answers a watermark request with an error that goes away when asked
again: the broker's NOT_LEADER_FOR_PARTITION or LEADER_NOT_AVAILABLE, or librdkafka's own time-out
or "unknown partition" while its metadata has no leader, a failed connection to a leader that is
down, or "broker handle destroyed" when the cluster dropped a stopped broker while a request to it
was outstanding. librdkafka reports those through a plain
error code, never flagged retriable, so the codes that mean "settling" are named here once.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from k2.errors import TopicError

SETTLING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._TRANSPORT,
        KafkaError._DESTROY_BROKER,
    }
)
_PAUSE_S = 0.2


def settling(exc: KafkaException) -> bool:
    """Whether the broker's error means the partition's leader is not settled yet."""
    return bool(exc.args) and isinstance(exc.args[0], KafkaError) and exc.args[0].code() in SETTLING


def watermarks(consumer: Consumer, partition: TopicPartition, timeout_s: float) -> tuple[int, int]:
    """The partition's low and high offsets, asked again while its leader settles.

    Raises :class:`TopicError` naming the partition and the broker's last answer when it has
    not settled within ``timeout_s``, or at once for any other error.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        left = max(deadline - time.monotonic(), 0.1)
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=left)
            return int(low), int(high)
        except KafkaException as exc:
            if not settling(exc) or time.monotonic() + _PAUSE_S > deadline:
                raise TopicError(
                    f"cannot read the offsets of {partition.topic} [{partition.partition}]: "
                    f"{exc.args[0].str()}; check that the broker is reachable"
                ) from exc
            time.sleep(_PAUSE_S)
