"""The record a running ``k2 run`` keeps in its state folder: its own pid and every part's.

``k2 status`` and ``k2 doctor`` read it to find the parts (pid, metrics address, log file) and
``k2 stack down`` to stop them. A record names each process by pid *and* start time, so a pid the
system has since given to another program is never mistaken for a part.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

_RUN_FILE = "run/pipeline.json"


@dataclass(frozen=True)
class PartRecord:
    """One part of a run: ``stage`` is ingest, stream, simulator (or another part's kind)."""

    name: str
    stage: str
    pid: int
    started_at: float
    log: str
    metrics_url: str | None = None
    address: str | None = None

    def alive(self) -> bool:
        return process_alive(self.pid, self.started_at)


@dataclass(frozen=True)
class RunRecord:
    """A ``k2 run`` supervisor and its parts."""

    pid: int
    started_at: float
    source: str
    git_sha: str
    logs: str
    parts: tuple[PartRecord, ...] = field(default_factory=tuple)

    def alive(self) -> bool:
        return process_alive(self.pid, self.started_at)


def process_alive(pid: int, started_at: float) -> bool:
    """True while ``pid`` is the same process that started at ``started_at``."""
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - started_at) < 0.5 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def start_time(pid: int) -> float:
    """The start time of ``pid`` as :func:`process_alive` compares it (0 when it is gone)."""
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


def run_file(state_dir: Path) -> Path:
    return state_dir / _RUN_FILE


def write_run(state_dir: Path, record: RunRecord) -> None:
    """Replace the record atomically, so a reader never sees half of it."""
    path = run_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(asdict(record), indent=2))
    temporary.replace(path)


def read_run(state_dir: Path) -> RunRecord | None:
    """The record of the run in ``state_dir``, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(run_file(state_dir).read_text())
        parts = tuple(PartRecord(**part) for part in data.pop("parts"))
        return RunRecord(**data, parts=parts)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def clear_run(state_dir: Path, pid: int) -> None:
    """Remove the record if it is the one of supervisor ``pid``."""
    record = read_run(state_dir)
    if record is not None and record.pid == pid:
        run_file(state_dir).unlink(missing_ok=True)


def _terminate(pids: list[tuple[int, float]], timeout_s: float) -> None:
    """SIGTERM each live (pid, start time), wait up to ``timeout_s``, then SIGKILL the rest."""
    procs = []
    for pid, started_at in pids:
        if process_alive(pid, started_at):
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                proc.send_signal(signal.SIGTERM)
                procs.append(proc)
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)


def stop_run(state_dir: Path, timeout_s: float) -> list[str]:
    """Stop the ``k2 run`` recorded in ``state_dir`` and any part it left behind; what stopped.

    The supervisor gets SIGTERM, so it stops its parts in data-flow order itself; parts still
    alive after it (a supervisor that was killed) are stopped directly.
    """
    record = read_run(state_dir)
    if record is None:
        return []
    stopped = []
    if record.alive():
        _terminate([(record.pid, record.started_at)], timeout_s)
        stopped.append(f"k2 run (pid {record.pid})")
    left = [part for part in record.parts if part.alive()]
    _terminate([(part.pid, part.started_at) for part in left], timeout_s)
    stopped += [f"{part.name} (pid {part.pid})" for part in left]
    run_file(state_dir).unlink(missing_ok=True)
    return stopped
