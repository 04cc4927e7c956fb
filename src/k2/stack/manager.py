"""The embedded stack as one unit: bring it up, take it down, report its status."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from k2.config import Settings
from k2.stack.kafka import KafkaBroker
from k2.stack.process import ManagedProcess
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
    """The broker and the registry, started in dependency order and stopped in reverse."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: list[Service] = [
            KafkaBroker(settings.stack),
            SchemaRegistry(settings.stack),
        ]

    def up(self) -> list[tuple[str, bool]]:
        """Start every service that is down. Returns (name, started_now) per service."""
        self.settings.stack.state_dir.mkdir(parents=True, exist_ok=True)
        return [(service.name, service.start()) for service in self.services]

    def down(self) -> list[tuple[str, bool]]:
        """Stop every running service, newest first; data stays in the state folder."""
        return [(service.name, service.stop()) for service in reversed(self.services)]

    def status(self) -> list[ServiceStatus]:
        rows = []
        now = time.time()
        for service in self.services:
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
