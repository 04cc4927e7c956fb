"""DuckDB over the catalog ``k2``: every table as a view named like the table, at its snapshot.

A :class:`LakeViews` keeps one DuckDB database in which ``gold.trades``, ``bronze.kraken_trades``
and every other table of the catalog is a view over an ``iceberg_scan`` of the table's current
metadata file. :meth:`LakeViews.refresh` asks the catalog for every table's metadata location in
one cheap look-up and rebuilds only the views whose location changed, so readers pay for a new
snapshot once, when it lands, never per query. Each table's snapshot history is kept beside its
view, so a time-travel query (``as_of`` a time or a snapshot id) resolves without the catalog.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from k2.config import LakeAccess
from k2.domain import micros_from_datetime
from k2.errors import LakeError, QueryError
from k2.lake.catalog import duckdb_connect, open_catalog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TableSnapshot:
    """One table as a reader sees it: its metadata file, current snapshot and history."""

    identifier: str
    location: str
    snapshot_id: int | None
    committed_ms: int | None
    history: tuple[tuple[int, int], ...] = ()  # (snapshot id, commit time in ms), oldest first

    def resolve(self, as_of: int | datetime | None) -> int | None:
        """The snapshot id to read for ``as_of``: the current one for None, the given id when
        the table still has it, else the newest snapshot committed at or before the time.

        Raises :class:`QueryError` when no such snapshot exists (never written yet, expired, or
        an id this table never had).
        """
        if as_of is None:
            return self.snapshot_id
        if isinstance(as_of, int):
            if any(snapshot == as_of for snapshot, _ in self.history):
                return as_of
            raise QueryError(f"{self.identifier} has no snapshot {as_of} (unknown or expired)")
        at_ms = micros_from_datetime(as_of) // 1000
        earlier = [snapshot for snapshot, ms in self.history if ms <= at_ms]
        if not earlier:
            raise QueryError(
                f"{self.identifier} has no snapshot at or before {as_of.isoformat()} "
                "(not written yet, or expired)"
            )
        return earlier[-1]


def table_locations(catalog: Any) -> dict[str, str]:
    """``namespace.name`` → current metadata location of every table of the catalog.

    A SQL catalog answers in one query on its own table of tables; any other catalog lists its
    namespaces and loads each table.
    """
    engine = getattr(catalog, "engine", None)
    if engine is not None:
        from pyiceberg.catalog.sql import IcebergTables
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        statement = select(
            IcebergTables.table_namespace,
            IcebergTables.table_name,
            IcebergTables.metadata_location,
        ).where(IcebergTables.catalog_name == catalog.name)
        type_filter = getattr(catalog, "_iceberg_type_filter", lambda: None)()
        if type_filter is not None:
            statement = statement.where(type_filter)
        with Session(engine) as session:
            rows = session.execute(statement).all()
        return {f"{ns}.{name}": location for ns, name, location in rows if location}
    locations = {}
    for (namespace,) in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            name = ".".join(identifier)
            locations[name] = str(catalog.load_table(name).metadata_location)
    return locations


def snapshot_of(identifier: str, table: Any) -> TableSnapshot:
    """The :class:`TableSnapshot` of a loaded pyiceberg table."""
    current = table.current_snapshot()
    history = tuple(
        sorted(
            ((s.snapshot_id, s.timestamp_ms) for s in table.metadata.snapshots),
            key=lambda pair: pair[1],
        )
    )
    return TableSnapshot(
        identifier=identifier,
        location=str(table.metadata_location),
        snapshot_id=current.snapshot_id if current is not None else None,
        committed_ms=current.timestamp_ms if current is not None else None,
        history=history,
    )


def quoted_name(identifier: str) -> str:
    namespace, _, name = identifier.partition(".")
    return f'"{namespace}"."{name}"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class LakeViews:
    """One DuckDB database whose views follow the catalog's tables (see the module doc).

    ``connection`` is the database's own connection; readers in other threads take
    :meth:`cursor` (a connection of their own to the same views). :meth:`refresh` is safe to
    call from one thread while others query.
    """

    def __init__(self, lake: LakeAccess, threads: int | None = None) -> None:
        self._catalog = open_catalog(lake)
        self.connection = duckdb_connect(lake.settings)
        self.connection.execute("SET TimeZone = 'UTC'")
        if threads is not None:
            self.connection.execute(f"SET threads = {int(threads)}")
        self._tables: dict[str, TableSnapshot] = {}
        self._lock = threading.Lock()

    @property
    def tables(self) -> Mapping[str, TableSnapshot]:
        """The tables as of the last refresh (an immutable view of one moment)."""
        return dict(self._tables)

    def cursor(self) -> Any:
        """A new DuckDB connection to the same database (for another thread)."""
        cursor = self.connection.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor

    def refresh(self) -> list[str]:
        """Rebuild the views of tables whose metadata changed; the identifiers rebuilt.

        Raises :class:`LakeError` when the catalog cannot be read.
        """
        with self._lock:
            try:
                locations = table_locations(self._catalog)
            except Exception as exc:  # the catalog's driver raises its own types
                raise LakeError(f"cannot list the tables of catalog k2: {exc}") from exc
            changed = [
                name
                for name, location in sorted(locations.items())
                if name not in self._tables or self._tables[name].location != location
            ]
            for name in changed:
                self._rebuild(name)
            for name in set(self._tables) - set(locations):
                self.connection.execute(f"DROP VIEW IF EXISTS {quoted_name(name)}")
                del self._tables[name]
            return changed

    def _rebuild(self, name: str) -> None:
        try:
            snapshot = snapshot_of(name, self._catalog.load_table(name))
        except Exception as exc:  # noqa: BLE001 - a table dropped between listing and loading
            log.warning("lake_view_skipped", table=name, error=str(exc))
            return
        namespace = name.partition(".")[0]
        self.connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{namespace}"')
        # A view cannot take parameters; the location is the catalog's, never a user's text.
        self.connection.execute(
            f"CREATE OR REPLACE VIEW {quoted_name(name)} AS "  # noqa: S608 - catalog names only
            f"SELECT * FROM iceberg_scan({_literal(snapshot.location)})"
        )
        self._tables[name] = snapshot
        log.debug("lake_view_refreshed", table=name, snapshot_id=snapshot.snapshot_id)
