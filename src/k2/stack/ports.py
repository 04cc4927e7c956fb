"""Ports: who holds one, so a clash is reported by name instead of as a timeout, and a free one."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import psutil

from k2.errors import PortInUseError


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


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_CHOICES = 12_000  # ports below the ephemeral range to choose from


def _ephemeral_low() -> int:
    """The first port the system gives outgoing connections (32768 where it does not say)."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now, chosen below the system's range for outgoing connections.

    A server restarted on its port (a broker or a worker of the local cluster, a test's stack)
    must find it free again: a port from the ephemeral range may meanwhile be the local end of
    any client's connection, one below it is taken only by another server.
    """
    low = _ephemeral_low()
    first = max(1024, low - _CHOICES)
    for _ in range(200):
        port = first + secrets.randbelow(max(1, low - first))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded range: any port
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
