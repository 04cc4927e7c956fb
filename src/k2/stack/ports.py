"""Ports: who holds one, so a clash is reported by name instead of as a timeout; and the ports
the pipeline's parts are configured to serve metrics on, which must all differ."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import psutil

from k2.config import Settings
from k2.errors import ConfigError, PortInUseError
from k2.exchanges.factory import metrics_port


def port_holder(host: str, port: int) -> str | None:
    """``name (pid N)`` of the process listening on ``port``, ``a process`` if unknown, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            pass
        else:
            return None
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid is None:
                    break
                try:
                    return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
                except psutil.Error:
                    return f"pid {conn.pid}"
    except psutil.Error:
        pass
    return "another process"


def ensure_port_free(host: str, port: int, what: str, setting: str) -> None:
    holder = port_holder(host, port)
    if holder is not None:
        raise PortInUseError(
            f"port {port} on {host} ({what}) is held by {holder}; stop it or set {setting}"
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now (for tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class PartPort:
    """The port one part of the pipeline serves its metrics on, and the setting that moves it."""

    part: str
    port: int  # 0: a free one, picked when the part starts
    setting: str


def part_ports(settings: Settings) -> list[PartPort]:
    """Every part's metrics port as configured: each exchange's ingest (each of the
    ``shards_per_exchange`` shards ``k2 run`` starts), the streaming job and the API."""
    shards = settings.ingest.shards_per_exchange
    found = []
    for exchange in settings.exchanges:
        for index in range(shards):
            name = f"ingest-{exchange}" if shards == 1 else f"ingest-{exchange}-{index}"
            port = metrics_port(settings.ingest, exchange, index)
            found.append(PartPort(name, port, "K2_INGEST__METRICS_PORT"))
    found.append(PartPort("stream", settings.stream.metrics_port, "K2_STREAM__METRICS_PORT"))
    found.append(PartPort("api", settings.api.port, "K2_API__PORT"))
    return found


def check_part_ports(settings: Settings) -> None:
    """Refuse settings that put two parts on one port, before anything starts: the second part
    would fail to listen (or, on another host, a scrape would read the wrong part)."""
    taken: dict[int, PartPort] = {}
    for part in part_ports(settings):
        if part.port == 0:
            continue
        first = taken.setdefault(part.port, part)
        if first is not part:
            to_change = " or ".join(dict.fromkeys((part.setting, first.setting)))
            raise ConfigError(
                f"{first.part} and {part.part} are both configured to serve on port {part.port}; "
                f"change {to_change}"
            )
