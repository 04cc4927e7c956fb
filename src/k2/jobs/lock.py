"""One writer per table: what the streaming job and a rebuild hold while they write.

The streaming job's appends are exact because it is the only writer of its tables (its markers
and Gold's anti-join assume no other insert lands between a read and a commit). A rebuild writes
the same tables, so both take the writer lock for as long as they write; the second to come is
refused with one line naming the first. The lock is two things: a file lock in ``K2_HOME``
(immediate, and released by the kernel when its holder dies) and a lease in the catalog
(:mod:`k2.lake.lease`), which every machine of a cluster shares. A background thread renews the
lease; a writer that finds its lease taken is told through ``on_lost`` and must stop writing.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from k2.config import LakeAccess
from k2.errors import LakeError, LeaseLostError, WriterBusyError
from k2.jobs.layout import Layout
from k2.lake.catalog import open_catalog
from k2.lake.lease import WriterLease

log = structlog.get_logger(__name__)

_RETRY_S = 5.0  # renewal after a failed attempt (the catalog briefly unreachable)


def lock_path(home: Path, plan: Layout) -> Path:
    """The file a writer of the layout's tables locks in ``home`` (``K2_HOME``)."""
    name = f"writer-{plan.prefix or 'default'}.lock"
    return home / "locks" / name


@contextmanager
def writer_lock(
    lake: LakeAccess,
    home: Path,
    lease_s: float,
    plan: Layout,
    holder: str,
    on_lost: Callable[[LeaseLostError], None] | None = None,
) -> Iterator[WriterLease]:
    """Hold the layout's writer lock for the duration; refuse if another writer holds it.

    The file lock is in ``home`` (``K2_HOME``); the catalog's lease runs for ``lease_s``
    (``stream.writer_lease_s``) and is renewed every third of it.
    """
    with _file_lock(lock_path(home, plan), holder):
        lease = WriterLease(open_catalog(lake), plan.prefix, holder, str(home), lease_s)
        lease.acquire()
        stop = threading.Event()
        renewer = threading.Thread(
            target=_renew,
            args=(lease, lease_s / 3, stop, on_lost),
            name="k2-writer-lease",
            daemon=True,
        )
        renewer.start()
        try:
            yield lease
        finally:
            stop.set()
            renewer.join(timeout=30)
            try:
                lease.release()
            except LakeError as exc:  # it expires on its own
                log.warning("writer_lease_not_released", error=str(exc).splitlines()[0][:300])


def _renew(
    lease: WriterLease,
    every_s: float,
    stop: threading.Event,
    on_lost: Callable[[LeaseLostError], None] | None,
) -> None:
    wait_s = every_s
    while not stop.wait(wait_s):
        try:
            lease.renew()
        except LeaseLostError as exc:
            log.error("writer_lease_lost", error=str(exc))
            if on_lost is not None:
                on_lost(exc)
            return
        except Exception as exc:  # noqa: BLE001 - the catalog is unreachable for now: try again soon
            log.warning("writer_lease_renewal_failed", error=str(exc).splitlines()[0][:300])
            wait_s = min(every_s, _RETRY_S)
            continue
        wait_s = every_s


@contextmanager
def _file_lock(path: Path, holder: str) -> Iterator[None]:
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
