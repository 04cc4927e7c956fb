"""A Kafka node in KRaft mode: one combined broker+controller.

The embedded stack runs one such node alone; the local cluster (:mod:`k2.stack.cluster`) runs
three of them as one quorum. Both are the same :class:`KafkaBroker`, told by a
:class:`KafkaLayout` which node it is, who votes in its quorum and where its state lives.

Its storage is formatted once (the cluster id is kept in ``meta.properties`` inside the data
folder) and its data stays in the state folder across ``down``/``up``.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from k2.config import StackSettings
from k2.errors import ArtifactsMissingError, StackError, StateCorruptedError
from k2.stack.java import find_java
from k2.stack.ports import ensure_port_free
from k2.stack.process import ManagedProcess

_LOG4J = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""


def new_cluster_id() -> str:
    """A random KRaft cluster id (URL-safe base64 of a UUID, as Kafka's own tool makes)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass(frozen=True)
class KafkaNode:
    """One voter of a KRaft quorum: its node id and its two listener ports."""

    node_id: int
    port: int
    controller_port: int


@dataclass(frozen=True)
class KafkaLayout:
    """Which node a broker is, who votes in its quorum, and where its state lives.

    ``home`` is the state folder the process is marked with (``-Dk2.home``), so a ``down`` of
    that folder finds it; ``cluster_id`` is the id its storage is formatted with (every voter
    of a quorum must share one; None makes a fresh one for a node alone). Internal topics are
    replicated to every voter (at most 3) and need all but one of them in sync.
    """

    name: str
    home: Path
    dir: Path
    node: KafkaNode
    voters: tuple[KafkaNode, ...]
    heap: str
    cluster_id: str | None = None
    port_setting: str = "K2_STACK__KAFKA_PORT"
    controller_port_setting: str = "K2_STACK__KAFKA_CONTROLLER_PORT"

    @classmethod
    def single(cls, stack: StackSettings) -> KafkaLayout:
        """The embedded stack's broker: node 1, alone in its quorum, in ``<state>/kafka``."""
        node = KafkaNode(1, stack.kafka_port, stack.kafka_controller_port)
        return cls(
            name="kafka",
            home=stack.state_dir,
            dir=stack.state_dir / "kafka",
            node=node,
            voters=(node,),
            heap=stack.kafka_heap,
        )

    @property
    def replication(self) -> int:
        return min(3, len(self.voters))

    @property
    def min_insync(self) -> int:
        return max(1, self.replication - 1)


class KafkaBroker:
    """Start, stop and inspect one local Kafka node (the embedded broker by default)."""

    def __init__(self, stack: StackSettings, layout: KafkaLayout | None = None) -> None:
        self.stack = stack
        self.layout = layout or KafkaLayout.single(stack)
        self.name = self.layout.name
        self.dir = self.layout.dir
        self.data_dir = self.dir / "data"
        self.process = ManagedProcess(self.name, self.dir, home=self.layout.home)
        self.lib = stack.jvm_lib / "kafka"

    @property
    def address(self) -> str:
        return f"{self.stack.host}:{self.layout.node.port}"

    def version(self) -> str:
        jars = sorted(self.lib.glob("kafka_2.13-*.jar"))
        return jars[0].stem.removeprefix("kafka_2.13-") if jars else "unknown"

    def healthy(self) -> bool:
        admin = AdminClient({"bootstrap.servers": self.address, "log_level": "0"})
        try:
            admin.list_topics(timeout=2)
        except Exception:  # noqa: BLE001 - any failure here only means "not yet"
            return False
        return True

    def start(self) -> bool:
        """Start the broker unless it runs already, and wait until it serves (a voter of a
        larger quorum serves only once a majority of the quorum runs). True if it was started
        now."""
        if self.process.info() is not None:
            return False
        if not any(self.lib.glob("kafka_2.13-*.jar")):
            raise ArtifactsMissingError(
                f"Kafka jars missing in {self.lib}; run `make jvm` to fetch them with Maven"
            )
        java, _ = find_java(17, self.stack.java_home, "K2_STACK__JAVA_HOME")
        node, layout = self.layout.node, self.layout
        ensure_port_free(self.stack.host, node.port, "Kafka", layout.port_setting)
        ensure_port_free(
            self.stack.host,
            node.controller_port,
            "Kafka controller",
            layout.controller_port_setting,
        )
        config = self._write_config()
        self._format_if_new(java, config)
        self.process.start(
            [
                str(java),
                f"-Xmx{layout.heap}",
                f"-Xms{layout.heap}",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
                *self.process.marks(),
                "-cp",
                f"{self.lib}/*",
                "kafka.Kafka",
                str(config),
            ],
            cwd=self.dir,
        )
        self.process.wait_until(self.healthy, self.stack.start_timeout_s, "healthy")
        return True

    def stop(self) -> bool:
        return self.process.stop(self.stack.stop_timeout_s)

    def unavailable(self) -> str | None:
        """Never skipped: the pipeline needs it."""
        return None

    def _write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        host, node, layout = self.stack.host, self.layout.node, self.layout
        port, cport = node.port, node.controller_port
        voters = ",".join(f"{v.node_id}@{host}:{v.controller_port}" for v in layout.voters)
        replicas, min_isr = str(layout.replication), str(layout.min_insync)
        lines = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "6",
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.retention.check.interval.ms": "60000",
        }
        if layout.replication > 1:
            # The defaults of topics a client creates without saying (a node alone keeps
            # Kafka's own defaults).
            lines["default.replication.factor"] = replicas
            lines["min.insync.replicas"] = min_isr
        config = self.dir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        (self.dir / "log4j2.properties").write_text(_LOG4J.format(log=self.process.log_file))
        return config

    def _format_if_new(self, java: Path, config: Path) -> None:
        meta = self.data_dir / "meta.properties"
        if meta.exists():
            self._check_meta(meta)
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise StateCorruptedError(
                f"Kafka state is corrupted: {self.data_dir} holds data but no meta.properties; "
                f"move it away (its records are lost) or restore it from a backup"
            )
        cluster_id = self.layout.cluster_id or new_cluster_id()
        argv = [
            str(java),
            "-Xmx256m",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            "-cp",
            f"{self.lib}/*",
            "kafka.tools.StorageTool",
            "format",
            # One argument: a random id may start with "-", which would read as an option.
            f"--cluster-id={cluster_id}",
            "-c",
            str(config),
        ]
        with self.process.log_file.open("ab") as out:
            done = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, timeout=180, check=False
            )
        if done.returncode != 0 or not meta.exists():
            raise StackError(
                f"formatting Kafka storage failed: {self.process.last_error_line()}; "
                f"see {self.process.log_file}"
            )

    def _check_meta(self, meta: Path) -> None:
        text = meta.read_text(errors="replace")
        if "cluster.id=" not in text or "node.id=" not in text:
            raise StateCorruptedError(
                f"Kafka state is corrupted: {meta} has no cluster.id/node.id; move "
                f"{self.data_dir} away (its records are lost) or restore it from a backup"
            )
        wanted = self.layout.cluster_id
        if wanted is not None and f"cluster.id={wanted}" not in text.splitlines():
            raise StateCorruptedError(
                f"Kafka state of {self.name} belongs to another cluster than its quorum's "
                f"({meta} has another cluster.id); move {self.data_dir} away (its records are "
                f"lost) or restore the cluster's state file"
            )
