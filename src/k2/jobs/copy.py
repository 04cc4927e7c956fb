"""Moving a lake: every table of another K2_HOME's embedded lake into the configured catalog.

A laptop's lake (the SQLite catalog and warehouse folder of a K2_HOME) becomes the start of a
cluster's (PostgreSQL or REST catalog, S3 warehouse). Each bronze, silver and gold table is
created in the target with the source's own definition (schema, partitioning, sort order,
properties) and filled with the source's rows as Arrow batches (pyiceberg on both sides, in
this process: the source's files are on this machine only), so decimals, times and Kafka
lineage are copied as they are, in commits of at most :data:`CHUNK_ROWS` rows.

Where the streaming job resumes depends on the Kafka the target reads. The same topics as the
source (``same_kafka``): where the copied tables end (the Kafka offsets in their rows), every
table skipping what it already holds, as after a lost checkpoint. Another Kafka cluster (the
default): its offsets mean nothing to the copied rows, so each table the job appends to gets a
marker saying none of the configured topics is settled yet, and the job reads them from their
start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import structlog

from k2.config import LakeAccess, LakeSettings
from k2.errors import LakeError
from k2.jobs.layout import Layout
from k2.jobs.lock import writer_lock
from k2.jobs.offsets import MARKER, PREVIOUS, marker_value
from k2.lake.catalog import ensure_namespaces, lake_tables, open_catalog, sqlite_path

log = structlog.get_logger(__name__)

CHUNK_ROWS = 500_000  # rows per commit: bounded memory, few commits


@dataclass
class CopyReport:
    """Rows copied per table."""

    rows: dict[str, int] = field(default_factory=dict)


def source_lake(home: Path, namespace_prefix: str) -> LakeAccess:
    """The embedded lake of ``home`` (its SQLite catalog and warehouse folder), its tables
    under ``namespace_prefix``."""
    # Built from the prefix alone: the environment describes the target.
    lake = LakeAccess.resolve(LakeSettings(namespace_prefix=namespace_prefix), home.resolve())
    catalog = sqlite_path(lake.catalog_uri)
    if not catalog.exists():
        raise LakeError(f"no lake in {home}: {catalog} does not exist; name the K2_HOME to copy")
    return lake


def copy_lake(
    lake: LakeAccess,
    source_home: Path,
    plan: Layout,
    home: Path,
    lease_s: float,
    same_kafka: bool = False,
    on_table: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy every table of the lake of ``source_home`` into ``lake``, whose streaming job's
    tables ``plan`` lays out.

    Refuses a target table that already holds rows (copy into a new lake), and holds the
    target's writer lock (in ``home``, its lease ``lease_s``) meanwhile: no streaming job may
    write there yet.
    """
    prefix = lake.settings.namespace_prefix
    origin = open_catalog(source_lake(source_home, prefix))
    target = open_catalog(lake)
    tables = lake_tables(origin, prefix)
    if not tables:
        raise LakeError(f"the lake of {source_home.resolve()} has no table to copy")
    report = CopyReport()
    with writer_lock(lake, home, lease_s, plan, "k2 lake copy"):
        ensure_namespaces(target, prefix)
        for identifier in tables:
            table = origin.load_table(identifier)
            rows = _copy_rows(table, _create_like(table, target, identifier))
            report.rows[identifier] = rows
            log.info("lake_table_copied", table=identifier, rows=rows)
            if on_table is not None:
                on_table(identifier, rows)
        if not same_kafka:
            for identifier in plan.marked_tables():
                if target.table_exists(identifier):
                    _settle_nothing(target.load_table(identifier))
    return report


def _settle_nothing(table: Any) -> None:
    """An empty commit whose offset marker settles no partition of any topic."""
    empty = table.schema().as_arrow().empty_table()
    table.append(empty, snapshot_properties={MARKER: marker_value({}), PREVIOUS: marker_value({})})


def _create_like(table: Any, target: Any, identifier: str) -> Any:
    """The target table with the source's definition; an existing one must be empty."""
    if target.table_exists(identifier):
        existing = target.load_table(identifier)
        snapshot = existing.current_snapshot()
        summary = snapshot.summary if snapshot is not None else None
        records = int(summary.additional_properties.get("total-records", 0)) if summary else 0
        if records:
            raise LakeError(
                f"{identifier} already holds {records} rows in the target catalog; copy into "
                f"a new lake (or another K2_LAKE__NAMESPACE_PREFIX)"
            )
        return existing
    return target.create_table(
        identifier,
        schema=table.schema(),
        partition_spec=table.spec(),
        sort_order=table.sort_order(),
        properties=table.properties,
    )


def _copy_rows(source: Any, target: Any) -> int:
    """Every row of ``source`` appended to ``target``; the count, checked on both sides."""
    batches: list[Any] = []
    pending = copied = 0
    for batch in source.scan().to_arrow_batch_reader():
        batches.append(batch)
        pending += batch.num_rows
        if pending >= CHUNK_ROWS:
            target.append(pa.Table.from_batches(batches))
            copied, batches, pending = copied + pending, [], 0
    if pending:
        target.append(pa.Table.from_batches(batches))
        copied += pending
    landed = _records(target.refresh())
    expected = _records(source)
    if landed != expected or copied != expected:
        raise LakeError(f"{source.name()}: {landed} rows in the target, {expected} in the source")
    return copied


def _records(table: Any) -> int:
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.additional_properties.get("total-records", 0))
