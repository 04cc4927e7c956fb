"""Terminal output of the commands, apart from what they do."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_SERVICE_ROW = "{:<10} {:<9} {:<44} {:>7} {:<9} {:>8}  {}"


def service_table(rows: Iterable[Any], echo: Callable[[str], None]) -> None:
    """One line per stack service: state, address, pid, version, uptime, log file."""
    echo(_SERVICE_ROW.format("component", "state", "address", "pid", "version", "uptime", "log"))
    for row in rows:
        state = ("up" if row.healthy else "starting") if row.up else "down"
        uptime = f"{row.uptime_s:.0f}s" if row.uptime_s is not None else "-"
        pid = str(row.pid) if row.pid else "-"
        echo(_SERVICE_ROW.format(row.name, state, row.address, pid, row.version, uptime, row.log))
