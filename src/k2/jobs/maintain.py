"""Running ``k2 lake maintain``: every maintenance step on every table, with Spark.

The steps themselves (their ``CALL`` statements, retention, what they report) are defined in
:mod:`k2.lake.maintenance`. Each step's commit is retried when it loses a race with the
streaming job (an append or a MERGE that committed first), from a fresh table state; the
streaming job retries its own commits the same way, so both can run at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from k2.config import LakeAccess, MaintenanceSettings, SparkSetup
from k2.errors import LakeError
from k2.jobs.service import service_setup
from k2.jobs.session import build_session
from k2.lake.commits import is_commit_conflict
from k2.lake.maintenance import (
    STEPS,
    StepCallback,
    TableReport,
    maintained_tables,
    snapshots_since_offsets,
    step_counts,
    step_sql,
)

log = structlog.get_logger(__name__)


def maintain_table(
    spark: Any,
    lake: LakeAccess,
    config: MaintenanceSettings,
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
        rows = _call_with_retries(spark, lake, config, step, table, report)
        report.counts.update(step_counts(step, rows))
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
    lake: LakeAccess,
    config: MaintenanceSettings,
    tables: Sequence[str] | None = None,
    on_step: StepCallback | None = None,
    stop: threading.Event | None = None,
) -> list[TableReport]:
    """Maintain ``tables`` (default: every table of the lakehouse), one after the other."""
    reports = []
    for table in tables if tables is not None else maintained_tables(lake):
        if stop is not None and stop.is_set():
            break
        reports.append(maintain_table(spark, lake, config, table, on_step, stop))
    return reports


def _call_with_retries(
    spark: Any,
    lake: LakeAccess,
    config: MaintenanceSettings,
    step: str,
    table: str,
    report: TableReport,
) -> list[Any]:
    attempts = config.commit_retries + 1
    for attempt in range(1, attempts + 1):
        retain = snapshots_since_offsets(lake, table) if step == "expire" else None
        sql = step_sql(step, table, config, datetime.now(UTC), retain)
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


def _data_files(spark: Any, table: str) -> int:
    query = f"SELECT count(*) AS n FROM k2.{table}.files"  # noqa: S608 - a catalog table name
    return int(spark.sql(query).collect()[0].n)


def run_maintenance(
    setup: SparkSetup,
    config: MaintenanceSettings,
    tables: Sequence[str] | None = None,
    schedule_s: float | None = None,
    stop_event: threading.Event | None = None,
) -> None:
    """Maintain the lakehouse once, or every ``schedule_s`` seconds until ``stop_event`` is set.

    Builds its own Spark session and shows a progress bar per run; a set ``stop_event`` ends the
    run after the step in progress.
    """
    stop = stop_event or threading.Event()
    spark = build_session(service_setup(setup), "k2-maintain")
    console = Console(stderr=True)
    try:
        while True:
            _run_once(spark, setup.lake, config, tables, console, stop)
            if schedule_s is None or stop.wait(schedule_s):
                return
    finally:
        spark.stop()


def _run_once(
    spark: Any,
    lake: LakeAccess,
    config: MaintenanceSettings,
    tables: Sequence[str] | None,
    console: Any,
    stop: threading.Event,
) -> list[TableReport]:
    names = list(tables) if tables is not None else maintained_tables(lake)
    columns = (TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("maintaining", total=len(names) * len(STEPS))

        def advance(table: str, step: str) -> None:
            progress.update(task, advance=1, description=f"{table}: {step} done")

        reports = maintain(spark, lake, config, names, advance, stop)
        progress.update(task, description=f"{len(names)} table(s) maintained")
    for report in reports:
        console.print(
            f"{report.table}: data files {report.files_before} -> {report.files_after}, "
            + ", ".join(f"{k}={v}" for k, v in sorted(report.counts.items()))
        )
    return reports
