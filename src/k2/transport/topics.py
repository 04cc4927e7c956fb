"""K2's Kafka topics: their names, their configuration, and idempotent creation.

Creation never silently accepts a topic that differs from the configuration: a partition count
other than the configured one is reported (Kafka cannot shrink partitions, and growing them would
move symbols to other partitions and break per-symbol order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from k2.errors import TopicError

GAPS_TOPIC = "market.crypto.gaps"
_TIMEOUT_S = 30.0


def raw_topic(exchange: str, prefix: str = "") -> str:
    return f"{prefix}market.crypto.trades.{exchange}.raw"


def dlq_topic(exchange: str, prefix: str = "") -> str:
    return f"{prefix}market.crypto.trades.{exchange}.dlq"


def book_topic(exchange: str, prefix: str = "") -> str:
    return f"{prefix}market.crypto.books.{exchange}.raw"


def book_dlq_topic(exchange: str, prefix: str = "") -> str:
    return f"{prefix}market.crypto.books.{exchange}.dlq"


def gaps_topic(prefix: str = "") -> str:
    return f"{prefix}{GAPS_TOPIC}"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    replication: int
    config: dict[str, str]


class TopicSettings(Protocol):
    """What :func:`k2_topics` reads of the Kafka settings (``k2.config.KafkaSettings``)."""

    @property
    def topic_prefix(self) -> str: ...
    @property
    def topic_partitions(self) -> int: ...
    @property
    def replication_factor(self) -> int: ...
    @property
    def retention_ms(self) -> int: ...
    @property
    def min_insync(self) -> int: ...


def k2_topics(
    kafka: TopicSettings, exchanges: Iterable[str], books: Iterable[str] = ()
) -> list[TopicSpec]:
    """Every topic K2 needs for ``exchanges`` (and the book topics of the exchanges in
    ``books``), shaped by the Kafka settings."""
    data = {
        "compression.type": "lz4",
        "retention.ms": str(kafka.retention_ms),
        "cleanup.policy": "delete",
        "min.insync.replicas": str(kafka.min_insync),
    }
    specs = []
    for exchange in exchanges:
        for name in (
            raw_topic(exchange, kafka.topic_prefix),
            dlq_topic(exchange, kafka.topic_prefix),
        ):
            specs.append(TopicSpec(name, kafka.topic_partitions, kafka.replication_factor, data))
    for exchange in books:
        for name in (
            book_topic(exchange, kafka.topic_prefix),
            book_dlq_topic(exchange, kafka.topic_prefix),
        ):
            specs.append(TopicSpec(name, kafka.topic_partitions, kafka.replication_factor, data))
    specs.append(TopicSpec(gaps_topic(kafka.topic_prefix), 1, kafka.replication_factor, data))
    return specs


class TopicAdmin:
    """Create, list and describe topics on the Kafka cluster that ``client_config`` (librdkafka
    settings, ``Settings.kafka_config()``) names."""

    def __init__(self, client_config: Mapping[str, str]) -> None:
        self.bootstrap = client_config["bootstrap.servers"]
        self.admin = AdminClient({**client_config, "log_level": "3"})

    def _metadata(self) -> Any:
        """The cluster's topic metadata; one-line TopicError when Kafka cannot be reached."""
        try:
            return self.admin.list_topics(timeout=_TIMEOUT_S)
        except KafkaException as exc:
            raise TopicError(
                f"cannot reach Kafka at {self.bootstrap}: {exc.args[0].str()}; start the "
                "embedded stack (`k2 stack up`, or `make run`) or set K2_KAFKA__BOOTSTRAP_SERVERS"
            ) from exc

    def names(self) -> list[str]:
        meta = self._metadata()
        return sorted(name for name in meta.topics if not name.startswith("__"))

    def describe(self, names: Iterable[str]) -> list[TopicState]:
        wanted = list(names)
        meta = self._metadata()
        missing = [name for name in wanted if name not in meta.topics]
        if missing:
            raise TopicError(
                f"topic(s) not found: {', '.join(missing)}; create with `k2 topics create`"
            )
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in wanted]
        configs = self.admin.describe_configs(resources)
        states = []
        for resource, future in configs.items():
            entries = future.result(timeout=_TIMEOUT_S)
            topic = meta.topics[resource.name]
            replication = (
                len(next(iter(topic.partitions.values())).replicas) if topic.partitions else 0
            )
            states.append(
                TopicState(
                    name=resource.name,
                    partitions=len(topic.partitions),
                    replication=replication,
                    config={
                        key: str(entry.value)
                        for key, entry in entries.items()
                        if not entry.is_default
                    },
                )
            )
        return sorted(states, key=lambda state: state.name)

    def ensure(self, specs: list[TopicSpec]) -> list[tuple[TopicSpec, str]]:
        """Create missing topics; report existing ones. Returns (spec, outcome) pairs.

        Outcomes: ``created``, ``exists``. A topic that exists with another partition count
        raises :class:`TopicError` naming the topic, both counts and the fix.
        """
        meta = self._metadata()
        outcomes: list[tuple[TopicSpec, str]] = []
        to_create = []
        for spec in specs:
            existing = meta.topics.get(spec.name)
            if existing is None:
                to_create.append(spec)
                continue
            if len(existing.partitions) != spec.partitions:
                raise TopicError(
                    f"topic {spec.name} has {len(existing.partitions)} partitions but the "
                    f"configuration says {spec.partitions}; set K2_KAFKA__TOPIC_PARTITIONS="
                    f"{len(existing.partitions)} or migrate the topic"
                )
            outcomes.append((spec, "exists"))
        if to_create:
            futures = self.admin.create_topics(
                [
                    NewTopic(
                        s.name,
                        num_partitions=s.partitions,
                        replication_factor=s.replication,
                        config=s.config,
                    )
                    for s in to_create
                ],
                operation_timeout=_TIMEOUT_S,
            )
            for spec in to_create:
                try:
                    futures[spec.name].result(timeout=_TIMEOUT_S)
                except KafkaException as exc:
                    error = exc.args[0]
                    if getattr(error, "code", lambda: None)() == 36:  # TOPIC_ALREADY_EXISTS: a race
                        outcomes.append((spec, "exists"))
                        continue
                    raise TopicError(f"cannot create topic {spec.name}: {error}") from exc
                outcomes.append((spec, "created"))
        return outcomes
