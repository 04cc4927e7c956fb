"""The embedded Kafka broker: one combined broker+controller node in KRaft mode.

Its storage is formatted once (the cluster id is kept in ``meta.properties`` inside the data
folder) and its data stays in the state folder across ``down``/``up``.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
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


class KafkaBroker:
    """Start, stop and inspect the local broker described by the stack settings."""

    name = "kafka"

    def __init__(self, stack: StackSettings) -> None:
        self.stack = stack
        self.dir = stack.state_dir / "kafka"
        self.data_dir = self.dir / "data"
        self.process = ManagedProcess("kafka", self.dir, home=stack.state_dir)
        self.lib = stack.jvm_lib / "kafka"

    @property
    def address(self) -> str:
        return f"{self.stack.host}:{self.stack.kafka_port}"

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
        """Start the broker unless it runs already. True if it was started now."""
        if self.process.info() is not None:
            return False
        if not any(self.lib.glob("kafka_2.13-*.jar")):
            raise ArtifactsMissingError(
                f"Kafka jars missing in {self.lib}; run `make jvm` to fetch them with Maven"
            )
        java, _ = find_java(17, self.stack.java_home, "K2_STACK__JAVA_HOME")
        ensure_port_free(self.stack.host, self.stack.kafka_port, "Kafka", "K2_STACK__KAFKA_PORT")
        ensure_port_free(
            self.stack.host,
            self.stack.kafka_controller_port,
            "Kafka controller",
            "K2_STACK__KAFKA_CONTROLLER_PORT",
        )
        config = self._write_config()
        self._format_if_new(java, config)
        self.process.start(
            [
                str(java),
                f"-Xmx{self.stack.kafka_heap}",
                f"-Xms{self.stack.kafka_heap}",
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
        host, port, cport = self.stack.host, self.stack.kafka_port, self.stack.kafka_controller_port
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{host}:{cport}",
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "6",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.retention.check.interval.ms": "60000",
        }
        config = self.dir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        (self.dir / "log4j2.properties").write_text(_LOG4J.format(log=self.process.log_file))
        return config

    def _format_if_new(self, java: Path, config: Path) -> None:
        meta = self.data_dir / "meta.properties"
        if meta.exists():
            text = meta.read_text(errors="replace")
            if "cluster.id=" not in text or "node.id=" not in text:
                raise StateCorruptedError(
                    f"Kafka state is corrupted: {meta} has no cluster.id/node.id; move "
                    f"{self.data_dir} away (its records are lost) or restore it from a backup"
                )
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise StateCorruptedError(
                f"Kafka state is corrupted: {self.data_dir} holds data but no meta.properties; "
                f"move it away (its records are lost) or restore it from a backup"
            )
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
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
            done = subprocess.run(  # noqa: S603 - argv built by K2
                argv, stdout=out, stderr=subprocess.STDOUT, timeout=180, check=False
            )
        if done.returncode != 0 or not meta.exists():
            raise StackError(
                f"formatting Kafka storage failed: {self.process.last_error_line()}; "
                f"see {self.process.log_file}"
            )
