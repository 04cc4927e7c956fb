"""Lifecycle of one background service process: start, find again from its pid file, stop.

A service is ours only if its pid file names a live process whose command line carries the
service's marker (``-Dk2.service=<name>`` for a JVM); a stale pid file or a recycled pid is never
killed. Every process is also started with a mark of its state folder (``-Dk2.home=<folder>``,
or a path inside the folder for a program that takes no free-form flag), so one whose pid file
was lost is still found, and stopped, by :meth:`ManagedProcess.stop`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
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

    def __init__(
        self,
        name: str,
        state_dir: Path,
        marker: str | None = None,
        home: Path | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        # The signal that asks the program for its orderly stop (PostgreSQL's is SIGINT: its
        # SIGTERM would wait for every client to leave).
        self.stop_signal = stop_signal
        self.state_dir = state_dir
        self.pid_file = state_dir / f"{name}.pid"
        self.log_file = state_dir / f"{name}.log"
        self.marker = marker or f"-Dk2.service={name}"
        # The mark of the state folder the process belongs to; a marker that names a path in
        # the folder (a config file) is such a mark already.
        self.home_marker = f"-Dk2.home={home}" if home is not None else None
        self._started: subprocess.Popen[bytes] | None = None

    def marks(self) -> list[str]:
        """The command-line arguments that make a process this service of this state folder."""
        return [self.marker] if self.home_marker is None else [self.marker, self.home_marker]

    def strays(self) -> list[int]:
        """Pids of this service's processes for this state folder that no pid file records
        (a start that failed half-way, a pid file removed by hand)."""
        wanted = set(self.marks())
        recorded = self.info()
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                args = set(proc.info["cmdline"] or ())
            except psutil.Error:
                continue
            if wanted <= args and (recorded is None or proc.pid != recorded.pid):
                found.append(proc.pid)
        return found

    def info(self) -> ProcessInfo | None:
        """The running process, or None (a pid file that is certainly stale is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            alive = proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
            args = proc.cmdline() if alive else []
            started = proc.create_time()
        except psutil.NoSuchProcess:
            alive, args, started = False, [], 0.0
        except psutil.Error:  # unreadable now (access, a process mid-exec): not proof either way
            return None
        if alive and self.marker in args:
            return ProcessInfo(pid=pid, started_at=started)
        if not alive or args:  # gone, or a pid the system gave to another program
            self.pid_file.unlink(missing_ok=True)
        return None

    def start(
        self,
        argv: Sequence[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        user: str | None = None,
    ) -> int:
        """Start ``argv`` in its own session with output appended to the log file; as the OS
        account ``user`` (with its own group and no other) when given."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        account = None if user is None else pwd.getpwnam(user)
        with self.log_file.open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
                user=None if account is None else account.pw_uid,
                group=None if account is None else account.pw_gid,
                extra_groups=None if account is None else [],
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        self._started = proc
        return proc.pid

    def _exited(self) -> bool:
        """True once the process is gone: by its exit status when this object started it (exact,
        and it reaps the child), else by its pid file."""
        if self._started is not None:
            return self._started.poll() is not None
        return self.info() is None

    def wait_until(self, ready: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll ``ready`` until true; fail with the log if the process dies or time runs out.

        A process that is still running when time runs out is stopped before the error is
        raised: a failed start leaves nothing behind.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._exited():
                raise StackError(
                    f"{self.name} exited during start-up: {self.last_error_line()}; "
                    f"full log: {self.log_file}"
                )
            if ready():
                return
            time.sleep(0.25)
        self.stop(timeout_s=10.0)
        raise StackError(
            f"{self.name} did not become {what} within {timeout_s:.0f}s; see {self.log_file}"
        )

    def stop(self, timeout_s: float) -> bool:
        """The stop signal (SIGTERM), a bounded wait, then SIGKILL, for the recorded process and
        every stray one of this state folder. True if a process was stopped."""
        info = self.info()
        pids = ([info.pid] if info is not None else []) + self.strays()
        procs = []
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                proc.send_signal(self.stop_signal)
            except psutil.NoSuchProcess:
                continue
            procs.append(proc)
        alive = _wait_gone(procs, timeout_s)
        for proc in alive:
            log.warning("service_kill_forced", service=self.name, pid=proc.pid, waited_s=timeout_s)
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        _wait_gone(alive, 10)
        self.pid_file.unlink(missing_ok=True)
        return bool(procs)

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


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait up to ``timeout_s`` for ``procs`` to end; those still running then.

    A process that ended but was not reaped yet by its parent (a zombie: the service was started
    by another, still running, program) has ended; only this process's own children can be
    reaped here, which waiting does.
    """
    deadline = time.monotonic() + timeout_s
    alive = list(procs)
    while alive:
        _, alive = psutil.wait_procs(alive, timeout=min(0.2, max(0.0, deadline - time.monotonic())))
        alive = [proc for proc in alive if not _ended(proc)]
        if time.monotonic() >= deadline:
            break
    return alive


def _ended(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True
