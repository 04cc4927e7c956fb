"""``k2 lake``: the Iceberg lakehouse (catalog ``k2``) and its maintenance."""

from __future__ import annotations

import click

from k2.cli.context import K2Group, settings_of, stop_on_signals


@click.group(cls=K2Group)
def lake() -> None:
    """The Iceberg lakehouse (catalog `k2`)."""


@lake.command("init")
@click.pass_context
def lake_init(ctx: click.Context) -> None:
    """Create the namespaces bronze, silver and gold (idempotent)."""
    from k2.lake.catalog import ensure_namespaces, namespaces, open_catalog  # noqa: PLC0415

    settings = settings_of(ctx)
    prefix = settings.lake.namespace_prefix
    created = ensure_namespaces(open_catalog(settings), prefix)
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
    from k2.jobs.maintain import run_maintenance  # noqa: PLC0415

    run_maintenance(settings_of(ctx), list(tables) or None, schedule_s, stop_on_signals())
