"""The embedded stack as real processes: status, restarts that keep data, and its error paths."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from k2.config import Settings
from k2.errors import JavaNotFoundError, PortInUseError, StateCorruptedError, TopicError
from k2.stack.kafka import KafkaBroker
from k2.stack.manager import Stack
from k2.transport.topics import TopicAdmin, TopicSpec, k2_topics
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

TRADE_SCHEMA = """
{"type": "record", "name": "Probe", "namespace": "k2.test",
 "fields": [{"name": "symbol", "type": "string"},
            {"name": "price", "type": "string"},
            {"name": "ts_us", "type": "long"}]}
"""


def _consume_all(settings: Settings, topic: str, expected: int) -> list[Any]:
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"probe-{os.getpid()}-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages = []
    try:
        for _ in range(120):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                messages.append(msg)
            if len(messages) >= expected:
                break
    finally:
        consumer.close()
    return messages


def test_status_reports_every_service_up(stack: Stack) -> None:
    """The embedded stack's status shows the broker and the registry up and healthy, each with its
    pid, uptime, log file and version."""
    rows = {row.name: row for row in stack.status()}
    assert set(rows) == {"kafka", "registry"}
    for row in rows.values():
        assert row.up and row.healthy and row.pid and row.uptime_s is not None
        assert Path(row.log).exists()
    assert rows["kafka"].version.startswith("4.")
    assert rows["registry"].version.startswith("3.")


def test_up_when_up_is_a_noop(stack: Stack) -> None:
    """Starting a stack that already runs starts nothing and restarts nothing."""
    before = {row.name: row.pid for row in stack.status()}
    assert stack.up() == [("kafka", False), ("registry", False)]
    assert {row.name: row.pid for row in stack.status()} == before


def test_topics_are_created_with_configured_shape(stack: Stack, settings: Settings) -> None:
    """K2's topics exist with the configured partitions, replication and lz4 compression, and
    ensuring them again changes nothing."""
    admin = TopicAdmin(settings.kafka_config())
    outcomes = admin.ensure(k2_topics(settings.kafka, settings.exchanges))
    assert {outcome for _, outcome in outcomes} == {"exists"}
    raw = admin.describe(["market.crypto.trades.kraken.raw"])[0]
    assert raw.partitions == 6 and raw.replication == 1
    assert raw.config["compression.type"] == "lz4"


def test_partition_mismatch_is_reported(stack: Stack, settings: Settings) -> None:
    """A topic whose partition count differs from the configuration is reported with both counts,
    never silently used."""
    spec = TopicSpec("market.crypto.trades.kraken.raw", 3, 1)
    with pytest.raises(TopicError, match="has 6 partitions but the configuration says 3"):
        TopicAdmin(settings.kafka_config()).ensure([spec])


def test_avro_round_trip_through_the_registry(stack: Stack, settings: Settings) -> None:
    """A record written through the real registry in Avro reads back exactly, decimals and
    microseconds included."""
    registry = SchemaRegistryClient(settings.registry_config())
    serializer = AvroSerializer(registry, TRADE_SCHEMA)
    deserializer = AvroDeserializer(registry)
    topic = "test.avro.roundtrip"
    TopicAdmin(settings.kafka_config()).ensure([TopicSpec(topic, 1, 1)])
    values = [
        {"symbol": "BTC/USD", "price": "65000.123456789012345678", "ts_us": 1_700_000_000_123_456},
        {"symbol": "ETH/USD", "price": "0.000000000000000001", "ts_us": 1},
    ]
    producer = Producer(settings.kafka_config())
    ctx = SerializationContext(topic, MessageField.VALUE)
    for value in values:
        producer.produce(topic, key=value["symbol"], value=serializer(value, ctx))
    assert producer.flush(30) == 0
    got = [deserializer(m.value(), ctx) for m in _consume_all(settings, topic, len(values))]
    assert got == values


def test_registry_restart_keeps_schema_ids(stack: Stack, settings: Settings) -> None:
    """A restarted registry still answers with the schema ids it gave before."""
    registry = SchemaRegistryClient(settings.registry_config())

    schema_id = registry.register_schema("test.ids-value", Schema(TRADE_SCHEMA, "AVRO"))
    registry_service = stack.services[1]
    assert registry_service.stop()
    assert registry_service.start()
    fresh = SchemaRegistryClient(settings.registry_config())
    assert fresh.get_latest_version("test.ids-value").schema_id == schema_id
    assert "Probe" in fresh.get_schema(schema_id).schema_str


def test_broker_restart_keeps_topics_and_records(stack: Stack, settings: Settings) -> None:
    """A restarted broker keeps its topics and every acknowledged record."""
    topic = "test.restart"
    TopicAdmin(settings.kafka_config()).ensure([TopicSpec(topic, 2, 1)])
    producer = Producer({**settings.kafka_config(), "acks": "all"})
    for i in range(100):
        producer.produce(topic, key=str(i % 7), value=f"record-{i}")
    assert producer.flush(30) == 0
    broker = stack.services[0]
    assert broker.stop()
    assert broker.start()
    assert topic in TopicAdmin(settings.kafka_config()).names()
    values = sorted(m.value().decode() for m in _consume_all(settings, topic, 100))
    assert values == sorted(f"record-{i}" for i in range(100))


def test_port_in_use_names_port_and_process(tmp_path: Path) -> None:
    """A port already taken is reported naming the port, the process holding it and the setting to
    change."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = make_settings(tmp_path / "home", kafka_port=port)
        with pytest.raises(PortInUseError) as err:
            KafkaBroker(settings.stack).start()
    message = str(err.value)
    assert f"port {port}" in message and f"pid {os.getpid()}" in message
    assert "K2_STACK__KAFKA_PORT" in message


def test_missing_java_is_one_line(tmp_path: Path) -> None:
    """A broker without a Java to run on is refused with one line saying which Java is needed."""
    settings = make_settings(tmp_path / "home", java_home=tmp_path / "no-jdk")
    with pytest.raises(JavaNotFoundError, match="Java 17\\+ not found"):
        KafkaBroker(settings.stack).start()


def test_corrupted_kafka_state_is_one_line(tmp_path: Path) -> None:
    """Broker data without its meta.properties is reported as corrupted state in one line, not
    started over."""
    settings = make_settings(tmp_path / "home")
    data = settings.stack.state_dir / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "market.crypto.trades.kraken.raw-0").mkdir()
    with pytest.raises(StateCorruptedError, match=r"no meta\.properties"):
        KafkaBroker(settings.stack).start()


def test_cli_prints_the_error_as_one_line(tmp_path: Path) -> None:
    """`k2 stack up` without Java prints one error line and no traceback, and exits with code 1."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("K2_")},
        "K2_HOME": str(tmp_path / "home"),
        "K2_STACK__JAVA_HOME": str(tmp_path / "no-jdk"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "k2", "stack", "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Java 17+ not found" in errors[0]
    assert "Traceback" not in done.stderr
