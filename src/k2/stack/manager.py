"""The embedded stack as one unit: bring it up, take it down, report its status.

A start that fails part-way stops what it started before raising, so a failed ``k2 stack up``
leaves nothing running; ``down`` stops every service process of the state folder, also one whose
pid file was lost (see :mod:`k2.stack.process`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from k2.config import Settings, StackSettings
from k2.stack.kafka import KafkaBroker
from k2.stack.process import ManagedProcess
from k2.stack.prometheus import LocalPrometheus
from k2.stack.registry import SchemaRegistry


class Service(Protocol):
    name: str
    process: ManagedProcess

    @property
    def address(self) -> str: ...

    def start(self) -> bool: ...

    def stop(self) -> bool: ...

    def version(self) -> str: ...

    def healthy(self) -> bool: ...

    def unavailable(self) -> str | None:
        """Why this optional service is skipped now, or None when it starts."""
        ...


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    up: bool
    healthy: bool
    address: str
    pid: int | None
    version: str
    uptime_s: float | None
    log: str


class Stack:
    """The broker and the registry, started in dependency order and stopped in reverse.

    Only what the settings leave embedded is K2's to run: with ``K2_KAFKA__BOOTSTRAP_SERVERS``
    or ``K2_REGISTRY__URL`` pointing elsewhere, that service is external (listed in
    :attr:`external`) and never started or stopped here.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: list[Service] = []
        self.external: list[tuple[str, str]] = []  # (name, address) of services run elsewhere
        if settings.kafka.bootstrap_servers is None:
            self.services.append(KafkaBroker(settings.stack))
        else:
            self.external.append(("kafka", settings.kafka.bootstrap_servers))
        if settings.registry.url is None:
            self.services.append(SchemaRegistry(settings.stack))
        else:
            self.external.append(("registry", settings.registry.url))
        if settings.prometheus.local != "off":
            self.services.append(LocalPrometheus(settings))
        self.skipped: list[tuple[str, str]] = []  # (name, why) of optional services not started

    def up(self) -> list[tuple[str, bool]]:
        """Start every service that is down. Returns (name, started_now) per service started or
        running; optional services that cannot start are listed in :attr:`skipped` instead.

        When one fails to start, those this call started are stopped again before the error
        propagates.
        """
        self.settings.stack.state_dir.mkdir(parents=True, exist_ok=True)
        self.skipped = []
        results: list[tuple[str, bool]] = []
        try:
            for service in self.services:
                reason = service.unavailable()
                if reason is not None:
                    self.skipped.append((service.name, reason))
                    continue
                results.append((service.name, service.start()))
        except BaseException:
            self.stop_services([name for name, started in results if started])
            raise
        return results

    def down(self) -> list[tuple[str, bool]]:
        """Stop every running service, newest first; data stays in the state folder."""
        return [(service.name, service.stop()) for service in reversed(self.services)]

    def stop_services(self, names: list[str]) -> list[tuple[str, bool]]:
        """Stop the services called ``names`` (and only those), newest first."""
        wanted = set(names)
        return [
            (service.name, service.stop())
            for service in reversed(self.services)
            if service.name in wanted
        ]

    def status(self) -> list[ServiceStatus]:
        return service_statuses(self.services)


def service_statuses(services: Iterable[Service]) -> list[ServiceStatus]:
    """One row per service: running or not, healthy, address, pid, version, uptime, log."""
    rows = []
    now = time.time()
    for service in services:
        info = service.process.info()
        rows.append(
            ServiceStatus(
                name=service.name,
                up=info is not None,
                healthy=info is not None and service.healthy(),
                address=service.address,
                pid=info.pid if info else None,
                version=service.version(),
                uptime_s=(now - info.started_at) if info else None,
                log=str(service.process.log_file),
            )
        )
    return rows


def stack_environment(stack: StackSettings) -> dict[str, str]:
    """The environment of a child ``k2`` process that uses ``stack``: this process's
    environment without its K2 settings, plus the stack's home, ports and JVM artifacts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("K2_")}
    env.update(
        {
            "K2_HOME": str(stack.home),
            "K2_STACK__KAFKA_PORT": str(stack.kafka_port),
            "K2_STACK__KAFKA_CONTROLLER_PORT": str(stack.kafka_controller_port),
            "K2_STACK__REGISTRY_PORT": str(stack.registry_port),
            "K2_STACK__REGISTRY_MANAGEMENT_PORT": str(stack.registry_management_port),
            "K2_STACK__JVM_LIB": str(stack.jvm_lib),
        }
    )
    return env
