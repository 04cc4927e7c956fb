"""Ports: who holds one, so a clash is reported by name instead of as a timeout, and a free one."""

from __future__ import annotations

import socket

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


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now (for tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
