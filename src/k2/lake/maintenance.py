"""``k2 lake maintain``: keep streaming tables fast and their storage bounded.

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
fresh table state. Rows never change: compaction rewrites files, not records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from k2.config import Settings
from k2.errors import LakeError
from k2.lake.catalog import NAMESPACES, open_catalog
from k2.lake.commits import is_commit_conflict
from k2.lake.tables import OFFSETS_PROPERTY

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


def maintained_tables(settings: Settings) -> list[str]:
    """Every table of the lakehouse namespaces (``bronze.x``, ``silver.y``, ...)."""
    catalog = open_catalog(settings)
    existing = {ns[0] for ns in catalog.list_namespaces()}
    return sorted(
        ".".join(identifier)
        for namespace in NAMESPACES
        if namespace in existing
        for identifier in catalog.list_tables(namespace)
    )


def step_sql(
    step: str, table: str, settings: Settings, now: datetime, retain_last: int | None = None
) -> str:
    """The ``CALL`` statement of one maintenance step for ``table`` (``namespace.name``)."""
    config = settings.maintenance
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


def maintain_table(
    spark: Any,
    settings: Settings,
    table: str,
    on_step: StepCallback | None = None,
    stop: threading.Event | None = None,
) -> TableReport:
    """Run every step on one table; a lost commit race is retried up to ``commit_retries``.

    A set ``stop`` ends it between steps (each step's commit is atomic, so nothing is half done).
    """
    started = time.monotonic()
    report = TableReport(table, files_before=_data_files(spark, table))
    for step in STEPS:
        if stop is not None and stop.is_set():
            break
        rows = _call_with_retries(spark, settings, step, table, report)
        report.counts.update(_counts(step, rows))
        if on_step is not None:
            on_step(table, step)
    report.files_after = _data_files(spark, table)
    report.duration_s = time.monotonic() - started
    log.info(
        "table_maintained",
        table=table,
        files_before=report.files_before,
        files_after=report.files_after,
        retries=report.retries,
        duration_s=round(report.duration_s, 2),
        **report.counts,
    )
    return report


def maintain(
    spark: Any,
    settings: Settings,
    tables: Sequence[str] | None = None,
    on_step: StepCallback | None = None,
    stop: threading.Event | None = None,
) -> list[TableReport]:
    """Maintain ``tables`` (default: every table of the lakehouse), one after the other."""
    reports = []
    for table in tables if tables is not None else maintained_tables(settings):
        if stop is not None and stop.is_set():
            break
        reports.append(maintain_table(spark, settings, table, on_step, stop))
    return reports


def _call_with_retries(
    spark: Any, settings: Settings, step: str, table: str, report: TableReport
) -> list[Any]:
    attempts = settings.maintenance.commit_retries + 1
    for attempt in range(1, attempts + 1):
        retain = _snapshots_since_offsets(settings, table) if step == "expire" else None
        sql = step_sql(step, table, settings, datetime.now(UTC), retain)
        try:
            return list(spark.sql(sql).collect())
        except Exception as exc:  # Spark wraps the JVM's exception; the text says which
            if not is_commit_conflict(exc) or attempt == attempts:
                raise LakeError(
                    f"maintenance step {step} of {table} failed: {str(exc).splitlines()[0]}"
                ) from exc
            report.retries += 1
            log.warning("maintenance_commit_retried", table=table, step=step, attempt=attempt)
            time.sleep(min(5.0, 0.2 * 2**attempt))
    return []


def _counts(step: str, rows: list[Any]) -> dict[str, int]:
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


def _snapshots_since_offsets(settings: Settings, table: str) -> int:
    """Snapshots from the current one back to the newest carrying Bronze's offsets (0: none).

    Expiry keeps at least these, so a Bronze table always knows where its stream stands even
    when compactions were committed after its last append.
    """
    metadata = open_catalog(settings).load_table(table).metadata
    count = 0
    snapshot_id = metadata.current_snapshot_id
    while snapshot_id is not None:
        snapshot = metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:
            return 0
        count += 1
        if (
            snapshot.summary is not None
            and OFFSETS_PROPERTY in snapshot.summary.additional_properties
        ):
            return count
        snapshot_id = snapshot.parent_snapshot_id
    return 0


def _data_files(spark: Any, table: str) -> int:
    query = f"SELECT count(*) AS n FROM k2.{table}.files"  # noqa: S608 - a catalog table name
    return int(spark.sql(query).collect()[0].n)


def _timestamp(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def run_maintenance(
    settings: Settings,
    tables: Sequence[str] | None = None,
    schedule_s: float | None = None,
    stop_event: threading.Event | None = None,
) -> None:
    """Maintain the lakehouse once, or every ``schedule_s`` seconds until ``stop_event`` is set.

    Builds its own Spark session and shows a progress bar per run; a set ``stop_event`` ends the
    run after the step in progress.
    """
    from rich.console import Console  # noqa: PLC0415

    from k2.jobs.service import service_settings  # noqa: PLC0415
    from k2.jobs.session import build_session  # noqa: PLC0415

    stop = stop_event or threading.Event()
    spark = build_session(service_settings(settings), "k2-maintain")
    console = Console(stderr=True)
    try:
        while True:
            _run_once(spark, settings, tables, console, stop)
            if schedule_s is None or stop.wait(schedule_s):
                return
    finally:
        spark.stop()


def _run_once(
    spark: Any,
    settings: Settings,
    tables: Sequence[str] | None,
    console: Any,
    stop: threading.Event,
) -> list[TableReport]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # noqa: PLC0415

    names = list(tables) if tables is not None else maintained_tables(settings)
    columns = (TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("maintaining", total=len(names) * len(STEPS))

        def advance(table: str, step: str) -> None:
            progress.update(task, advance=1, description=f"{table}: {step} done")

        reports = maintain(spark, settings, names, advance, stop)
        progress.update(task, description=f"{len(names)} table(s) maintained")
    for report in reports:
        console.print(
            f"{report.table}: data files {report.files_before} -> {report.files_after}, "
            + ", ".join(f"{k}={v}" for k, v in sorted(report.counts.items()))
        )
    return reports
