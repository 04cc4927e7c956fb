"""Lifecycle of one background service process: start, find again from its pid file, stop.

A service is ours only if its pid file names a live process whose command line carries the
service's marker (``-Dk2.service=<name>``); a stale pid file or a recycled pid is never killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import structlog

from k2.errors import StackError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    started_at: float


class ManagedProcess:
    """A detached child process tracked by a pid file in its state folder."""

    def __init__(self, name: str, state_dir: Path) -> None:
        self.name = name
        self.state_dir = state_dir
        self.pid_file = state_dir / f"{name}.pid"
        self.log_file = state_dir / f"{name}.log"
        self._started: subprocess.Popen[bytes] | None = None

    @property
    def marker(self) -> str:
        return f"-Dk2.service={self.name}"

    def info(self) -> ProcessInfo | None:
        """The running process, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            alive = proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
            ours = alive and any(self.marker == arg for arg in proc.cmdline())
            started = proc.create_time()
        except psutil.Error:
            ours, started = False, 0.0
        if not ours:
            self.pid_file.unlink(missing_ok=True)
            return None
        return ProcessInfo(pid=pid, started_at=started)

    def start(self, argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> int:
        """Start ``argv`` in its own session with output appended to the log file."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - argv is built by K2, never from user text
                list(argv),
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        self._started = proc
        return proc.pid

    def wait_until(self, ready: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll ``ready`` until true; fail with the log if the process dies or time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._running():
                raise StackError(
                    f"{self.name} exited during start-up: {self.last_error_line()}; "
                    f"full log: {self.log_file}"
                )
            if ready():
                return
            time.sleep(0.25)
        raise StackError(
            f"{self.name} did not become {what} within {timeout_s:.0f}s; see {self.log_file}"
        )

    def _running(self) -> bool:
        """Whether the process is alive: for one this object started, its own handle says (its
        command line can be unreadable for a moment while it starts); else its pid file."""
        if self._started is not None:
            return self._started.poll() is None
        return self.info() is not None

    def stop(self, timeout_s: float) -> bool:
        """SIGTERM, a bounded wait, then SIGKILL. True if a process was stopped."""
        info = self.info()
        if info is None:
            return False
        proc = psutil.Process(info.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except psutil.TimeoutExpired:
            log.warning("service_kill_forced", service=self.name, pid=info.pid, waited_s=timeout_s)
            proc.kill()
            proc.wait(timeout=10)
        self.pid_file.unlink(missing_ok=True)
        return True

    def last_error_line(self) -> str:
        """The most telling line of the log: the last ERROR/Exception line, else the last line."""
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()[-200:]
        except OSError:
            return "no log written"
        for line in reversed(lines):
            if "ERROR" in line or "Exception" in line or "Error:" in line:
                return line.strip()[:300]
        return lines[-1].strip()[:300] if lines else "no output"
