"""Every part of a running pipeline, found and described: the stack services, each ingest, the
streaming job, the simulator.

Where a part listens comes from the record of a running ``k2 run`` (its actual ports and pids)
or, for parts started on their own, from the settings. Version and git sha come from each
service's own ``k2_build_info`` (the JVMs report their versions as ``k2 stack status`` does); a
service whose git sha differs from the installed code is marked stale, in words.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil

from k2.config import Settings
from k2.monitoring.prometheus_config import scrape_targets
from k2.ops.external import ExternalPart, kafka_brokers, object_store, spark_cluster
from k2.run.record import PartRecord, RunRecord, read_run
from k2.stack.manager import Stack
from k2.stack.scrape import Scrape, scrape
from k2.version import git_sha, k2_version


@dataclass(frozen=True)
class Component:
    """One part of the pipeline as ``k2 status`` shows it."""

    name: str
    kind: str  # service (a stack JVM or Prometheus), ingest, stream, simulator
    up: bool
    address: str
    pid: int | None = None
    uptime_s: float | None = None
    version: str = "-"
    git_sha: str = "-"
    stale: str | None = None  # why it runs stale code, in words
    log: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Endpoint:
    """Where a K2 process is expected: its metrics (or, for the simulator, its base URL)."""

    name: str
    kind: str
    url: str
    pid: int | None = None
    log: str | None = None


def endpoints(settings: Settings, run: RunRecord | None) -> list[Endpoint]:
    """The K2 processes to look for: the recorded run's parts, else the configured ones."""
    if run is not None:
        return [_endpoint(part) for part in run.parts]
    targets = scrape_targets(
        settings.stack.host, settings.exchanges, settings.ingest, settings.stream, settings.api
    )
    found = [
        Endpoint(target.component, target.job.removeprefix("k2-"), target.url)
        for target in targets
        if target.port
    ]
    found.append(Endpoint("simulator", "simulator", settings.ingest.simulator_url))
    return found


def _endpoint(part: PartRecord) -> Endpoint:
    if part.metrics_url is not None:
        url = part.metrics_url
    else:
        url = f"http://{part.address}" if part.address else ""
    return Endpoint(part.name, part.stage, url, part.pid if part.alive() else None, part.log)


def listener_pid(url: str) -> int | None:
    """The pid of the process listening on the port of ``url`` on this machine, if any."""
    port = urlsplit(url).port
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return conn.pid
    except psutil.Error:
        return None
    return None


def _uptime(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        return time.time() - psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def stale_reason(build: dict[str, str], installed: str) -> str | None:
    """Why a service with ``build`` labels runs other code than the installed ``installed`` sha."""
    running = build.get("git_sha", "unknown")
    if "unknown" in (running, installed) or running == installed:
        return None
    return f"runs stale code: git sha {running}, installed {installed}; restart it"


def service_component(endpoint: Endpoint, found: Scrape | None, installed: str) -> Component:
    """A K2 service that serves metrics, described from its scrape."""
    address = urlsplit(endpoint.url).netloc
    if found is None:
        return Component(endpoint.name, endpoint.kind, False, address, log=endpoint.log)
    build = dict(found.build())
    pid = endpoint.pid or listener_pid(endpoint.url)
    return Component(
        endpoint.name,
        endpoint.kind,
        True,
        address,
        pid,
        _uptime(pid),
        build.get("version", "-"),
        build.get("git_sha", "-"),
        stale_reason(build, installed),
        endpoint.log,
    )


def simulator_component(endpoint: Endpoint) -> Component:
    """The simulator, from its ``/_sim/status`` (it serves no metrics, so no build info)."""
    address = urlsplit(endpoint.url).netloc
    try:
        with urllib.request.urlopen(f"{endpoint.url}/_sim/status", timeout=2) as resp:  # noqa: S310 - the simulator's http URL
            status = json.load(resp)
    except (OSError, urllib.error.URLError, ValueError):
        return Component(endpoint.name, "simulator", False, address, log=endpoint.log)
    pid = endpoint.pid or listener_pid(endpoint.url)
    clients = len(status.get("connections", []))
    return Component(
        endpoint.name,
        "simulator",
        True,
        address,
        pid,
        _uptime(pid),
        log=endpoint.log,
        detail=f"{clients} client connection(s)",
    )


def listening_component(endpoint: Endpoint) -> Component:
    """A recorded part that serves no metrics: up while something accepts on its address."""
    address = urlsplit(endpoint.url).netloc
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            up = True
    except (OSError, ValueError):
        up = False
    pid = endpoint.pid if up else None
    return Component(endpoint.name, endpoint.kind, up, address, pid, _uptime(pid), log=endpoint.log)


def stack_components(settings: Settings) -> list[Component]:
    """The stack's services; a local Prometheus only when it runs or is required."""
    required = settings.prometheus.local == "on"
    return [
        Component(
            row.name,
            "service",
            row.up,
            row.address,
            row.pid,
            row.uptime_s,
            row.version,
            log=row.log,
            detail="" if row.healthy or not row.up else "starting",
        )
        for row in Stack(settings).status()
        if row.up or row.name != "prometheus" or required
    ]


def external_components(settings: Settings) -> list[Component]:
    """The services K2 uses but does not run (a Kafka cluster, a registry, an object store, a
    Spark master and its workers), each probed directly."""
    found: list[Component] = []
    if settings.kafka.bootstrap_servers is not None:
        brokers, under = kafka_brokers(settings.kafka_config(), settings.kafka.topic_prefix)
        note = f"; {under} partition(s) under-replicated" if under else ""
        found += [_external(b, note) for b in brokers]
    if settings.registry.url is not None:
        found.append(_external(_registry(settings.registry_config())))
    store = object_store(settings.lake)
    if store is not None:
        found.append(_external(store))
    found += [_external(part) for part in spark_cluster(settings.spark)[0]]
    return found


def _external(part: ExternalPart, note: str = "") -> Component:
    return Component(part.name, "external", part.up, part.address, detail=part.detail + note)


def _registry(registry: Mapping[str, str]) -> ExternalPart:
    """The registry of the client settings ``registry`` (``Settings.registry_config()``)."""
    from confluent_kafka.schema_registry import (  # noqa: PLC0415 - for an external registry only
        SchemaRegistryClient,
    )

    url = registry["url"]
    try:
        subjects = SchemaRegistryClient({**registry, "timeout": 2}).get_subjects()
    except Exception as exc:  # noqa: BLE001 - any failure means it cannot serve K2 now
        return ExternalPart("registry", url, False, str(exc).splitlines()[0][:200])
    return ExternalPart("registry", url, True, f"{len(subjects)} subjects")


@dataclass(frozen=True)
class Components:
    """Every component, the scrapes of those that serve metrics, and the installed build."""

    items: list[Component]
    scrapes: dict[str, Scrape]
    run: RunRecord | None
    installed_version: str
    installed_sha: str


def collect_components(settings: Settings) -> Components:
    """Look for every part of the pipeline, once."""
    installed = git_sha()
    run = read_run(settings.stack.state_dir)
    run = run if run is not None and run.alive() else None
    items = stack_components(settings) + external_components(settings)
    scrapes: dict[str, Scrape] = {}
    for endpoint in endpoints(settings, run):
        if endpoint.kind == "simulator":
            items.append(simulator_component(endpoint))
            continue
        if not endpoint.url.endswith("/metrics"):
            items.append(listening_component(endpoint))
            continue
        found = scrape(endpoint.url)
        if found is not None:
            scrapes[endpoint.name] = found
        items.append(service_component(endpoint, found, installed))
    return Components(items, scrapes, run, k2_version(), installed)
