"""Which broker answers mean a partition's leader is settling, and what a caller sees when it
never settles."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from k2.errors import TopicError
from k2.stack.ports import free_port
from k2.transport.offsets import settling, watermarks


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._DESTROY_BROKER,
    ],
)
def test_a_partition_without_a_leader_yet_is_settling(code: int) -> None:
    """The answers of a partition whose leader is being elected are asked again."""
    assert settling(KafkaException(KafkaError(code)))


@pytest.mark.parametrize(
    "code", [KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.INVALID_REQUEST]
)
def test_a_refusal_is_not_settling(code: int) -> None:
    """An error that asking again cannot cure goes to the caller at once."""
    assert not settling(KafkaException(KafkaError(code)))


def test_offsets_of_a_broker_that_never_answers_name_the_partition_after_the_deadline() -> None:
    """With no broker at all, the caller waits its deadline, then gets one error naming the
    partition and what to check."""
    consumer = Consumer(
        {"bootstrap.servers": f"127.0.0.1:{free_port()}", "group.id": "t", "log_level": 0}
    )
    started = time.monotonic()
    try:
        with pytest.raises(TopicError, match=r"offsets of t\.raw \[0\].*broker is reachable"):
            watermarks(consumer, TopicPartition("t.raw", 0), 1.5)
    finally:
        consumer.close()
    assert 1.0 <= time.monotonic() - started < 10
