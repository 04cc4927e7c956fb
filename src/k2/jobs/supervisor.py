"""Keeping one streaming query running: restart after a failure, stop between micro-batches.

The streaming job runs one query; :class:`Supervisor` restarts it when it fails (after 5 s,
doubling to 60 s while it keeps failing), and the restarted query resumes exactly where its
checkpoint and tables say. A stop waits for a running micro-batch to commit, so no work is
wasted (stopping mid-batch would be safe too: the batch is replayed and written once).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_RESTART_BACKOFF_S = (5.0, 60.0)


def stop_between_batches(query: Any, timeout_s: float) -> None:
    """Stop ``query``, waiting up to ``timeout_s`` for a running micro-batch to commit first."""
    deadline = time.monotonic() + timeout_s
    while query.isActive and query.status["isTriggerActive"] and time.monotonic() < deadline:
        time.sleep(0.1)
    query.stop()


class Supervisor:
    """Runs the query ``start`` makes; :meth:`check` restarts it once its back-off has passed."""

    def __init__(self, name: str, start: Callable[[], Any], on_restart: Callable[[], None]) -> None:
        self.name = name
        self._start = start
        self._on_restart = on_restart
        self.query: Any = start()
        self.failures = 0
        self._restart_at: float | None = None

    def check(self) -> None:
        """Call every second or so: notices a failed query and restarts it in time."""
        if self.query is not None and self.query.isActive:
            if self.failures and self.query.lastProgress is not None:
                self.failures = 0  # it runs again
            return
        now = time.monotonic()
        if self._restart_at is None:
            error = self.query.exception() if self.query is not None else None
            self._fail("stream_query_failed", str(error) if error is not None else "stopped", now)
            self.query = None
            return
        if now < self._restart_at:
            return
        self._on_restart()
        try:
            self.query = self._start()
            self._restart_at = None
        except Exception as exc:  # noqa: BLE001 - a supervisor outlives whatever the restart hits; it retries
            self._fail("stream_query_restart_failed", str(exc), now)

    def stop(self, timeout_s: float) -> None:
        if self.query is not None:
            stop_between_batches(self.query, timeout_s)

    def _fail(self, event: str, error: str, now: float) -> None:
        self.failures += 1
        first, cap = _RESTART_BACKOFF_S
        delay = min(cap, first * 2 ** (self.failures - 1))
        self._restart_at = now + delay
        log.error(
            event, query=self.name, error=(error.splitlines() or [""])[0][:500], restart_in_s=delay
        )
