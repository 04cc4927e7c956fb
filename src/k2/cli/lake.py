"""``k2 lake``: the Iceberg lakehouse (catalog ``k2``) and its maintenance."""

from __future__ import annotations

from pathlib import Path

import click

from k2.cli.context import K2Group, settings_of, stop_on_signals


@click.group(cls=K2Group)
def lake() -> None:
    """The Iceberg lakehouse (catalog `k2`)."""


@lake.command("init")
@click.pass_context
def lake_init(ctx: click.Context) -> None:
    """Create the namespaces bronze, silver and gold (idempotent)."""
    from k2.lake.catalog import ensure_namespaces, namespaces, open_catalog

    settings = settings_of(ctx)
    prefix = settings.lake.namespace_prefix
    created = ensure_namespaces(open_catalog(settings.lake_access()), prefix)
    for namespace in namespaces(prefix):
        click.echo(f"k2.{namespace}: {'created' if namespace in created else 'exists'}")


@lake.command("maintain")
@click.option(
    "--schedule",
    "schedule_s",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Run again every SECONDS until Ctrl-C (default: once).",
)
@click.option(
    "--table",
    "tables",
    multiple=True,
    help="Only this table, as namespace.name; repeatable (default: every table).",
)
@click.pass_context
def lake_maintain(ctx: click.Context, schedule_s: float | None, tables: tuple[str, ...]) -> None:
    """Compact small files, expire old snapshots, remove orphan files, rewrite manifests.

    Safe while the streaming jobs write. Retention and sizes: K2_MAINTENANCE__* settings.
    """
    from k2.jobs.maintain import run_maintenance

    settings = settings_of(ctx)
    run_maintenance(
        settings.spark_setup(),
        settings.maintenance,
        list(tables) or None,
        schedule_s,
        stop_on_signals(),
    )


@lake.command("copy")
@click.option(
    "--from-home",
    "home",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The K2_HOME whose lake to copy (its SQLite catalog and warehouse folder).",
)
@click.option(
    "--same-kafka",
    is_flag=True,
    help="The configured Kafka is the one the source lake was written from: the streaming job "
    "resumes where the copied tables end. Without it, the configured topics are read from "
    "their start.",
)
@click.pass_context
def lake_copy(ctx: click.Context, home: Path, same_kafka: bool) -> None:
    """Copy a local lake into the configured catalog and warehouse (e.g. a cluster's).

    Every bronze, silver and gold table of HOME's embedded lake is created in the configured
    catalog with the same definition and filled with its rows. The target tables must be new or
    empty, and no streaming job may run on them meanwhile. Then start the streaming job
    (`k2 run` or `k2 job stream`) on the new settings.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from k2.jobs.copy import copy_lake, source_lake
    from k2.jobs.layout import layout
    from k2.lake.catalog import lake_tables, open_catalog

    settings = settings_of(ctx)
    prefix = settings.lake.namespace_prefix
    total = len(lake_tables(open_catalog(source_lake(home, prefix)), prefix))
    columns = (TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("copying the lake", total=total)

        def copied(table: str, rows: int) -> None:
            progress.update(task, advance=1, description=f"{table} ({rows} rows)")

        report = copy_lake(
            settings.lake_access(),
            home,
            layout(settings),
            settings.stack.state_dir,
            settings.stream.writer_lease_s,
            same_kafka,
            copied,
        )
    click.echo(f"{len(report.rows)} tables, {sum(report.rows.values())} rows copied")
    resume = "where the copied tables end" if same_kafka else "from the start of its topics"
    click.echo(f"next: start the streaming job on these settings; it reads {resume}")
