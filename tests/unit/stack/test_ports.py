"""Free ports for servers that restart on them."""

from __future__ import annotations

import socket

from k2.stack.ports import _ephemeral_low, free_port


def test_a_free_port_lies_below_the_range_outgoing_connections_take() -> None:
    """A port chosen for a server is never one the system may hand to a client's connection
    while the server is down, so the server finds it free when it restarts."""
    low = _ephemeral_low()
    ports = {free_port() for _ in range(50)}
    assert all(1024 <= port < low for port in ports), sorted(ports)
    assert len(ports) > 40  # chosen at random, not the same few


def test_a_free_port_can_be_listened_on() -> None:
    """The port is free when it is handed out: a server binds it at once."""
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
