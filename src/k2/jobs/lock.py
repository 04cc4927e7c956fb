"""One writer per table: the lock the streaming job and a rebuild take on a layout's tables.

The streaming job's appends are exact because it is the only writer of its tables (its markers
and Gold's anti-join assume no other insert lands between a read and a commit). A rebuild writes
the same tables, so both take this lock, a file beside the job's checkpoint, for as long as they
write; the second to come is refused with one line naming the first. The lock is local to one
machine: a job on a cluster is stopped by hand before a rebuild.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from k2.errors import WriterBusyError
from k2.jobs.layout import Layout


def lock_path(plan: Layout) -> Path:
    """The file the streaming job locks while it runs (beside its checkpoint)."""
    return plan.checkpoint.with_name(plan.checkpoint.name + ".lock")


@contextmanager
def writer_lock(plan: Layout, holder: str) -> Iterator[None]:
    """Hold the lock of the layout's tables for the duration; refuse if someone else holds it."""
    path = lock_path(plan)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            other = handle.read().strip() or "another process"
            raise WriterBusyError(
                f"{other} is writing these tables now; stop it first (Ctrl-C on `k2 run` or "
                f"`k2 job stream`), then run this again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{holder} (pid {os.getpid()})")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
