"""``k2 lake maintain``: what keeps streaming tables fast and their storage bounded.

A streaming job commits every few seconds, each commit adding a few small files and a snapshot.
Left alone, queries open ever more files and every commit rewrites ever longer metadata. For each
table of the catalog, maintenance runs Iceberg's Spark procedures, in this order:

1. ``rewrite_data_files`` compacts small files into files of ``target_file_size_mb``, with
   partial progress so each partition group commits on its own;
2. ``expire_snapshots`` drops snapshots older than the retention window (keeping the newest
   ``retain_last``, and always the newest snapshot recording a Bronze stream's Kafka offsets) and
   deletes the files only they referenced, including the small files compaction just replaced;
3. ``remove_orphan_files`` deletes files no snapshot references (left by a job killed mid-write)
   once they are older than ``orphan_age_hours``, which exceeds any write in progress;
4. ``rewrite_manifests`` regroups the manifests the many small commits produced.

It is safe while the stream writes: Iceberg commits are optimistic, an append never conflicts
with a compaction, and a step whose commit loses a race is retried (``commit_retries``) from a
fresh table state (the streaming job retries its own commits the same way). Rows never change:
compaction rewrites files, not records.

This module holds the steps (their ``CALL`` statements and what to report); running them is the
maintenance job's (:mod:`k2.jobs.maintain`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from k2.config import LakeAccess, MaintenanceSettings
from k2.errors import LakeError
from k2.lake.catalog import lake_tables, open_catalog
from k2.lake.tables import LEGACY_OFFSETS_PROPERTY, OFFSETS_PROPERTY

log = structlog.get_logger(__name__)

STEPS = ("compact", "expire", "orphans", "manifests")


@dataclass
class TableReport:
    """What maintenance did to one table."""

    table: str
    files_before: int = 0
    files_after: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    duration_s: float = 0.0


StepCallback = Callable[[str, str], None]


def maintained_tables(lake: LakeAccess) -> list[str]:
    """Every table of the lakehouse namespaces (``bronze.x``, ``silver.y``, ...)."""
    return lake_tables(open_catalog(lake), lake.settings.namespace_prefix)


def step_sql(
    step: str,
    table: str,
    config: MaintenanceSettings,
    now: datetime,
    retain_last: int | None = None,
) -> str:
    """The ``CALL`` statement of one maintenance step for ``table`` (``namespace.name``)."""
    name = table.replace("'", "''")
    if step == "compact":
        options = {
            "min-input-files": str(config.min_input_files),
            "target-file-size-bytes": str(config.target_file_size_mb * 1024 * 1024),
            "partial-progress.enabled": "true",
            "partial-progress.max-commits": "10",
        }
        pairs = ", ".join(f"'{k}', '{v}'" for k, v in options.items())
        return f"CALL k2.system.rewrite_data_files(table => '{name}', options => map({pairs}))"
    if step == "expire":
        cutoff = _timestamp(now - timedelta(hours=config.snapshot_retention_hours))
        return (
            f"CALL k2.system.expire_snapshots(table => '{name}', older_than => {cutoff}, "
            f"retain_last => {max(config.retain_last, retain_last or 0)})"
        )
    if step == "orphans":
        cutoff = _timestamp(now - timedelta(hours=config.orphan_age_hours))
        return f"CALL k2.system.remove_orphan_files(table => '{name}', older_than => {cutoff})"
    if step == "manifests":
        return f"CALL k2.system.rewrite_manifests(table => '{name}')"
    raise LakeError(f"unknown maintenance step {step!r}; steps: {', '.join(STEPS)}")


def step_counts(step: str, rows: list[Any]) -> dict[str, int]:
    """The figures worth reporting from a step's result rows."""
    if step == "orphans":
        return {"orphan_files_removed": len(rows)}
    if not rows:
        return {}
    wanted = {
        "compact": ("rewritten_data_files_count", "added_data_files_count"),
        "expire": ("deleted_data_files_count", "deleted_manifest_files_count"),
        "manifests": ("rewritten_manifests_count", "added_manifests_count"),
    }[step]
    values = rows[0].asDict()
    return {key: int(values.get(key) or 0) for key in wanted}


def snapshots_since_offsets(lake: LakeAccess, table: str) -> int:
    """Snapshots from the current one back to the newest carrying Bronze's offsets (0: none).

    Expiry keeps at least these, so a Bronze table always knows where its stream stands even
    when compactions were committed after its last append.
    """
    metadata = open_catalog(lake).load_table(table).metadata
    count = 0
    snapshot_id = metadata.current_snapshot_id
    while snapshot_id is not None:
        snapshot = metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:
            return 0
        count += 1
        properties = snapshot.summary.additional_properties if snapshot.summary else {}
        if OFFSETS_PROPERTY in properties or LEGACY_OFFSETS_PROPERTY in properties:
            return count
        snapshot_id = snapshot.parent_snapshot_id
    return 0


def _timestamp(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')}'"
