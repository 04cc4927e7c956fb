"""One writer per pipeline across machines: a lease kept in the Iceberg catalog.

The streaming job's appends are exact because it is the only writer of its tables (its offset
markers and Gold's anti-join assume no other insert lands between a read and a commit). A
rebuild writes the same tables. On one machine a file lock keeps the two apart; on a cluster
they may start on different machines, which share only the catalog. So the writer also holds a
lease in the catalog: the table ``<prefix>control.writer_lease``, whose current snapshot's
summary names the holder and when its lease expires.

Taking or renewing the lease is an empty commit carrying the new holder, which the catalog
accepts only while the table is still at the snapshot the writer read (a compare-and-swap that
JDBC and REST catalogs both enforce; the table's own commit retries are off so a lost race is
seen, never silently re-applied). A second writer finds the lease held and unexpired and is
refused with one line naming the holder. A holder that died frees it when it expires; one that
restarts on the same machine and state folder takes it over at once (its local lock proves the
previous holder gone). Old snapshots are expired and their manifest lists deleted as it goes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import structlog

from k2.errors import LeaseLostError, WriterBusyError

log = structlog.get_logger(__name__)

NAMESPACE = "control"
TABLE = "writer_lease"
_PREFIX = "k2.lease."
_ATTEMPTS = 5
_TABLE_PROPERTIES = {
    "commit.retry.num-retries": "0",  # a lost race must fail, not be re-applied on top
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "10",
}


@dataclass(frozen=True)
class Holder:
    """Who holds (or wants) the lease."""

    name: str  # what writes: "k2 job stream", "k2 job rebuild silver"
    host: str
    home: str  # the K2_HOME it runs from
    pid: int
    token: str
    expires_us: int = 0

    def describe(self) -> str:
        return f"{self.name} on {self.host} (pid {self.pid}, K2_HOME {self.home})"

    def same_place(self, other: Holder) -> bool:
        return (self.host, self.home) == (other.host, other.home)

    def properties(self) -> dict[str, str]:
        return {
            f"{_PREFIX}holder": self.name,
            f"{_PREFIX}host": self.host,
            f"{_PREFIX}home": self.home,
            f"{_PREFIX}pid": str(self.pid),
            f"{_PREFIX}token": self.token,
            f"{_PREFIX}expires-us": str(self.expires_us),
        }

    @classmethod
    def from_properties(cls, properties: dict[str, str]) -> Holder | None:
        try:
            return cls(
                properties[f"{_PREFIX}holder"],
                properties[f"{_PREFIX}host"],
                properties[f"{_PREFIX}home"],
                int(properties[f"{_PREFIX}pid"]),
                properties[f"{_PREFIX}token"],
                int(properties[f"{_PREFIX}expires-us"]),
            )
        except (KeyError, ValueError):
            return None


def lease_identifier(prefix: str) -> str:
    return f"{prefix}{NAMESPACE}.{TABLE}"


class WriterLease:
    """The lease of the tables under namespace ``prefix``, for the holder ``name``."""

    def __init__(
        self,
        catalog: Any,
        prefix: str,
        name: str,
        home: str,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._catalog = catalog
        self._identifier = lease_identifier(prefix)
        self._namespace = f"{prefix}{NAMESPACE}"
        self._ttl_us = int(ttl_s * 1e6)
        self._clock = clock
        self.me = Holder(name, socket.gethostname(), home, os.getpid(), uuid.uuid4().hex)

    def _now_us(self) -> int:
        return int(self._clock() * 1e6)

    def acquire(self) -> None:
        """Take the lease; :class:`WriterBusyError` names the holder when another writer has it."""
        for _ in range(_ATTEMPTS):
            table = self._table()
            current = _holder(table)
            if current is not None and current.token != self.me.token:
                live = current.expires_us > self._now_us()
                if live and not current.same_place(self.me):
                    left_s = (current.expires_us - self._now_us()) / 1e6
                    raise WriterBusyError(
                        f"{current.describe()} is writing these tables now (its lease runs "
                        f"{left_s:.0f} s more unless it renews it); stop it first, then run "
                        f"this again"
                    )
            if self._write(table):
                log.info("writer_lease_acquired", table=self._identifier, holder=self.me.name)
                return
        raise WriterBusyError(
            f"could not take the writer lease {self._identifier}: other writers kept changing "
            f"it; stop them first, then run this again"
        )

    def renew(self) -> None:
        """Extend the lease; :class:`LeaseLostError` when another writer has taken it."""
        for _ in range(_ATTEMPTS):
            table = self._table()
            current = _holder(table)
            if current is None or current.token != self.me.token:
                taken = current.describe() if current else "nobody (it was released)"
                raise LeaseLostError(
                    f"the writer lease {self._identifier} is now held by {taken}; this writer "
                    f"stops so that two never write the same tables"
                )
            if self._write(table):
                return
        raise LeaseLostError(f"could not renew the writer lease {self._identifier}")

    def release(self) -> None:
        """Give the lease back (an expired entry of this holder), if it is still this one's."""
        table = self._table()
        current = _holder(table)
        if current is not None and current.token == self.me.token:
            self._write(table, expires_us=0)

    def _write(self, table: Any, expires_us: int | None = None) -> bool:
        """Commit this holder with a new expiry on top of the snapshot read; False when another
        writer committed first."""
        from pyiceberg.exceptions import CommitFailedException

        until = self._now_us() + self._ttl_us if expires_us is None else expires_us
        properties = replace(self.me, expires_us=until).properties()
        empty = table.schema().as_arrow().empty_table()
        try:
            table.append(empty, snapshot_properties=properties)
        except CommitFailedException:
            return False
        _forget_old_snapshots(self._catalog.load_table(self._identifier))
        return True

    def _table(self) -> Any:
        from pyiceberg.exceptions import (
            NamespaceAlreadyExistsError,
            TableAlreadyExistsError,
        )
        from pyiceberg.schema import Schema
        from pyiceberg.types import NestedField, StringType

        if not self._catalog.table_exists(self._identifier):
            try:
                self._catalog.create_namespace_if_not_exists(self._namespace)
                schema = Schema(NestedField(1, "note", StringType(), required=False))
                self._catalog.create_table(self._identifier, schema, properties=_TABLE_PROPERTIES)
            except (NamespaceAlreadyExistsError, TableAlreadyExistsError):
                pass  # another writer created it a moment ago
        return self._catalog.load_table(self._identifier)


def _holder(table: Any) -> Holder | None:
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return None
    return Holder.from_properties(dict(snapshot.summary.additional_properties))


def _forget_old_snapshots(table: Any) -> None:
    """Expire every snapshot but the current one and delete their manifest lists (the lease
    writes no data or manifest files), so the table stays a few small files."""
    current = table.current_snapshot()
    old = [s for s in table.metadata.snapshots if s.snapshot_id != current.snapshot_id]
    if not old:
        return
    from pyiceberg.exceptions import CommitFailedException

    try:
        table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in old]).commit()
    except CommitFailedException:
        return  # another writer committed meanwhile: the next write expires these
    for snapshot in old:
        with contextlib.suppress(OSError):  # already gone: nothing to keep
            table.io.delete(snapshot.manifest_list)
