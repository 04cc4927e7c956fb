"""``k2 run``: the whole pipeline on one machine, as far as it exists, until Ctrl-C.

It brings the embedded stack up (what is not already running), then starts one child process
per part: the simulator (with ``--source simulator``), the ingests (one per configured exchange,
or ``K2_INGEST__SHARDS_PER_EXCHANGE`` shards of it), the streaming job (every lakehouse layer) and
the API (``k2 api``). Each child runs in its own
session, so Ctrl-C reaches only this supervisor, which then stops the children with one SIGTERM
each: the API first (it only reads), then in data-flow order the ingests (they flush to Kafka),
the streaming job (it finishes its micro-batch),
then the simulator, and finally the stack services that this run started itself (a service that
was already running is left running). A child that exits on its own stops the pipeline, and the
supervisor says which part stopped and where its log is.

Each part writes its whole log to ``K2_HOME/logs/<part>.log``; the streaming job's JVM (Spark,
Hadoop, Iceberg) writes to ``K2_HOME/logs/stream-jvm.log`` unless ``jvm_logs`` asks for it on
the console. In a terminal the console shows a live summary (:mod:`k2.run.console`) and the
supervisor's own log goes to ``K2_HOME/logs/run.log``; otherwise every part's log lines are
copied to stderr as they are written, JSON as each part writes them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import structlog

from k2.config import (
    ApiSettings,
    IngestSettings,
    Settings,
    SparkSettings,
    StackSettings,
    StreamSettings,
)
from k2.errors import K2Error
from k2.exchanges.factory import metrics_port
from k2.monitoring.parts import check_part_ports
from k2.run.record import PartRecord, RunRecord, clear_run, start_time, write_run
from k2.stack.manager import Stack
from k2.stack.ports import free_port
from k2.transport.topics import TopicAdmin, k2_topics
from k2.version import git_sha

log = structlog.get_logger(__name__)

_POLL_S = 0.5
_SIMULATOR_START_S = 60.0
# Parts stop stage by stage in this order (data-flow order); a stage not named here stops last.
STOP_ORDER = ("api", "ingest", "stream", "simulator")
_SPARK_LOG4J = """\
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {path}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yyyy-MM-dd HH:mm:ss.SSS}} %p %c{{1}}: %m%n%ex
"""


@dataclass(frozen=True)
class PartSpec:
    """One part of the pipeline before it starts: its command and how to reach and stop it."""

    name: str
    stage: str
    args: tuple[str, ...]
    stop_timeout_s: float
    env: dict[str, str] = field(default_factory=dict)
    metrics_port: int | None = None
    address: str | None = None  # host:port a part must listen on before the next starts


@dataclass
class Part:
    """A started part: its process and its log file."""

    spec: PartSpec
    process: subprocess.Popen[bytes]
    log: Path
    host: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def metrics_url(self) -> str | None:
        port = self.spec.metrics_port
        return f"http://{self.host}:{port}/metrics" if port else None

    def exit_code(self) -> int | None:
        return self.process.poll()


def logs_dir(stack: StackSettings) -> Path:
    """Where ``k2 run`` writes the log of each part: ``K2_HOME/logs``."""
    return stack.state_dir / "logs"


def _port(configured: int, host: str) -> int:
    """A configured port, or a free one for 0, so the run knows where every part listens."""
    return configured if configured else free_port(host)


def ingest_parts(exchanges: Sequence[str], ingest: IngestSettings, host: str) -> list[PartSpec]:
    """One ingest per exchange (or ``K2_INGEST__SHARDS_PER_EXCHANGE`` shards of it), each on its
    own metrics port (:func:`~k2.exchanges.factory.metrics_port`) on ``host``."""
    flush = ingest.flush_timeout_s + 10.0
    shards = ingest.shards_per_exchange
    parts = []
    for exchange in exchanges:
        for index in range(shards):
            port = _port(metrics_port(ingest, exchange, index), host)
            name = f"ingest-{exchange}" if shards == 1 else f"ingest-{exchange}-{index}"
            shard = f"{index}/{shards}"
            args = ("ingest", "--exchange", exchange, "--shard", shard, "--metrics-port", str(port))
            parts.append(PartSpec(name, "ingest", args, flush, metrics_port=port))
    return parts


def stream_part(
    stream: StreamSettings, spark: SparkSettings, host: str, logs: Path, jvm_logs: bool
) -> PartSpec:
    """The streaming job, its metrics on ``host``; its JVM logs to a file of its own unless
    ``jvm_logs``."""
    port = _port(stream.metrics_port, host)
    env = {"K2_STREAM__METRICS_PORT": str(port)}
    if not jvm_logs:
        config = logs / "log4j2-stream.properties"
        config.write_text(_SPARK_LOG4J.format(path=logs / "stream-jvm.log"))
        conf = dict(spark.conf)
        option = f"-Dlog4j2.configurationFile=file:{config}"
        given = conf.get("spark.driver.extraJavaOptions")
        conf["spark.driver.extraJavaOptions"] = f"{given} {option}" if given else option
        env["K2_SPARK__CONF"] = json.dumps(conf)
    # Stopping waits for a running micro-batch (up to the trigger interval + 60 s), then rolls
    # the bars up and stops Spark.
    stop_s = stream.trigger_interval_s + 180.0
    return PartSpec("stream", "stream", ("job", "stream"), stop_s, env, metrics_port=port)


def api_part(api: ApiSettings) -> PartSpec:
    """The read-only HTTP API over the lake; its ``/metrics`` is on the same port."""
    port = _port(api.port, api.host)
    return PartSpec("api", "api", ("api", "--port", str(port)), 30.0, metrics_port=port)


def simulator_part(ingest: IngestSettings) -> PartSpec:
    url = urlsplit(ingest.simulator_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    args = ("simulate", "--host", host, "--port", str(port))
    return PartSpec("simulator", "simulator", args, 15.0, address=f"{host}:{port}")


def plan_parts(settings: Settings, source: str, logs: Path, jvm_logs: bool) -> list[PartSpec]:
    """Every part of the pipeline in start order."""
    host = settings.stack.host
    parts = [simulator_part(settings.ingest)] if source == "simulator" else []
    parts += ingest_parts(settings.exchanges, settings.ingest, host)
    parts.append(stream_part(settings.stream, settings.spark, host, logs, jvm_logs))
    parts.append(api_part(settings.api))
    return parts


def _start(spec: PartSpec, env: dict[str, str], logs: Path, host: str) -> Part:
    path = logs / f"{spec.name}.log"
    with path.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "k2", *spec.args],
            env={**env, **spec.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    log.info("pipeline_part_started", part=spec.name, pid=process.pid, log=str(path))
    return Part(spec, process, path, host)


def _wait_for_port(part: Part, timeout_s: float) -> None:
    host, _, port = (part.spec.address or "").rpartition(":")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if part.process.poll() is not None:
            raise K2Error(f"the {part.name} exited before listening on {host}:{port}")
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise K2Error(f"the {part.name} did not listen on {host}:{port} within {timeout_s:.0f} s")


def _record(home: Path, source: str, parts: Sequence[Part], logs: Path) -> None:
    records = tuple(
        PartRecord(
            name=part.name,
            stage=part.spec.stage,
            pid=part.process.pid,
            started_at=start_time(part.process.pid),
            log=str(part.log),
            metrics_url=part.metrics_url,
            address=part.spec.address,
        )
        for part in parts
    )
    me = os.getpid()
    record = RunRecord(me, start_time(me), source, git_sha(), str(logs), records)
    write_run(home, record)


Watcher = Callable[[Sequence[Part]], None]


@dataclass(frozen=True)
class Console:
    """How a run talks to the person: ``echo`` lines, and ``watch`` called every poll with the
    running parts (a live summary, or the copying of part logs to stderr)."""

    echo: Callable[[str], None]
    watch: Watcher = lambda parts: None
    close: Callable[[], None] = lambda: None


def run_pipeline(
    settings: Settings,
    source: str,
    stop: threading.Event,
    console: Console,
    jvm_logs: bool = False,
) -> None:
    """Run until ``stop`` is set (or a part exits); raises K2Error naming a part that failed.

    Settings that put two parts on one port are refused before anything starts."""
    check_part_ports(settings.exchanges, settings.ingest, settings.stream, settings.api)
    logs = logs_dir(settings.stack)
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(settings)
    started_services = _stack_up(stack, console)
    parts: list[Part] = []
    failed: Part | None = None
    try:
        TopicAdmin(settings.kafka_config()).ensure(
            k2_topics(settings.kafka, settings.exchanges, settings.book_exchanges)
        )
        env = {**os.environ, "K2_INGEST__SOURCE": source}
        for spec in plan_parts(settings, source, logs, jvm_logs):
            parts.append(_start(spec, env, logs, settings.stack.host))
            if spec.address is not None:
                _wait_for_port(parts[-1], _SIMULATOR_START_S)
        _record(settings.stack.state_dir, source, parts, logs)
        console.echo(
            f"K2 runs: {', '.join(p.name for p in parts)} (source: {source}). "
            f"Ctrl-C stops every part cleanly. Logs: {logs}/"
        )
        while not stop.is_set():
            console.watch(parts)
            failed = next((p for p in parts if p.process.poll() is not None), None)
            if failed is not None:
                break
            stop.wait(_POLL_S)
    finally:
        _stop_parts(parts)
        console.watch(parts)
        console.close()
        if started_services:
            stack.stop_services(started_services)
        clear_run(settings.stack.state_dir, os.getpid())
        console.echo(_goodbye(parts, started_services))
    if failed is not None:
        raise K2Error(
            f"the {failed.name} stopped on its own (exit {failed.process.returncode}), so the "
            f"pipeline was stopped; its log: {failed.log}"
        )


def _goodbye(parts: Sequence[Part], services: list[str]) -> str:
    """The last line of a run: how each part exited, and which services were stopped."""
    exits = ", ".join(f"{p.name} (exit {p.process.returncode})" for p in parts)
    left = f"; stopped the services it started: {', '.join(services)}" if services else ""
    return f"K2 stopped: {exits or 'no part started'}{left}"


def _stack_up(stack: Stack, console: Console) -> list[str]:
    """Bring the stack up, say what runs; the services started now (the run stops only those)."""
    services = stack.up()
    said = [f"{name} {'started' if now else 'already running'}" for name, now in services]
    said += [f"{name} external ({address})" for name, address in stack.external]
    said += [f"{name} not started ({reason})" for name, reason in stack.skipped]
    console.echo("stack: " + ", ".join(said))
    return [name for name, now in services if now]


def _stages(parts: Sequence[Part]) -> list[list[Part]]:
    """The parts grouped by stage, in :data:`STOP_ORDER`."""
    order = {stage: index for index, stage in enumerate(STOP_ORDER)}
    stages: dict[int, list[Part]] = {}
    for part in parts:
        stages.setdefault(order.get(part.spec.stage, len(order)), []).append(part)
    return [stages[key] for key in sorted(stages)]


def _stop_parts(parts: Sequence[Part]) -> None:
    """Stop the API, then the ingests, the streaming job and the simulator: the order data
    flows in."""
    for stage in _stages(parts):
        for part in stage:
            if part.process.poll() is None:
                part.process.send_signal(signal.SIGTERM)
        for part in stage:
            try:
                part.process.wait(part.spec.stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.error("pipeline_part_killed", part=part.name, waited_s=part.spec.stop_timeout_s)
                part.process.kill()
                part.process.wait()
            log.info("pipeline_part_stopped", part=part.name, exit_code=part.process.returncode)
