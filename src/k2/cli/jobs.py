"""``k2 job``: K2's Spark jobs."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from k2.cli.context import K2Group, settings_of, stop_on_signals
from k2.config import KNOWN_EXCHANGES


@click.group(cls=K2Group)
def job() -> None:
    """Run K2's Spark jobs (local[*] by default, any master with K2_SPARK__MASTER)."""


_EXCHANGE_OPTION = click.option(
    "--exchange",
    "exchanges",
    multiple=True,
    type=click.Choice(KNOWN_EXCHANGES),
    help="Only this exchange; repeatable (default: every configured exchange).",
)


@job.command("stream")
@_EXCHANGE_OPTION
@click.pass_context
def job_stream(ctx: click.Context, exchanges: tuple[str, ...]) -> None:
    """Stream the raw Kafka topics into every layer of the lakehouse, exactly once.

    Runs until Ctrl-C or SIGTERM, then stops cleanly between micro-batches. Restarting resumes
    where it stopped (from its checkpoint, or from the offsets in the tables if the checkpoint
    is gone). Prometheus metrics on K2_STREAM__METRICS_PORT.
    """
    from k2.jobs.stream import run_stream

    settings = settings_of(ctx)
    run_stream(settings, list(exchanges) or None, stop_on_signals())


@job.command("bronze", hidden=True)
@_EXCHANGE_OPTION
@click.pass_context
def job_bronze(ctx: click.Context, exchanges: tuple[str, ...]) -> None:
    """The former name of `k2 job stream`, which now writes every layer; runs it."""
    click.echo("note: `k2 job bronze` is now `k2 job stream` (every layer); running it", err=True)
    ctx.invoke(job_stream, exchanges=exchanges)


def _instant(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """An ISO 8601 time (UTC unless it says otherwise) as µs since the epoch."""
    if value is None:
        return None
    from datetime import UTC, datetime

    from k2.domain import micros_from_datetime

    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time, e.g. 2026-12-01T09:00"
        ) from None
    return micros_from_datetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


@job.command("rebuild")
@click.argument("layer", type=click.Choice(["silver", "gold", "bars"]))
@_EXCHANGE_OPTION
@click.option("--from", "start", callback=_instant, help="First exchange time (ISO 8601, UTC).")
@click.option(
    "--to", "end", callback=_instant, help="End exchange time, exclusive (ISO 8601, UTC)."
)
@click.pass_context
def job_rebuild(
    ctx: click.Context,
    layer: str,
    exchanges: tuple[str, ...],
    start: int | None,
    end: int | None,
) -> None:
    """Recompute LAYER (silver, gold or bars) from the layer below, in batch.

    \b
      silver  from Bronze, with the streaming job's normalisation and validation
      gold    from Silver, one row per message_id as the stream keeps it
      bars    from gold.trades, every interval

    --from/--to bound it by exchange time (bars: every bar overlapping the range, whole).
    The streaming job must be stopped meanwhile; the rebuild refuses to start beside it.
    Rebuild silver, then gold, then bars, to carry a change through every layer.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from k2.jobs.rebuild import Layer, Window, rebuild, steps_of
    from k2.jobs.service import service_setup
    from k2.jobs.session import build_session

    if start is not None and end is not None and start >= end:
        raise click.BadParameter("--from must be before --to")
    settings = settings_of(ctx)
    names = list(exchanges) or list(settings.exchanges)
    spark = build_session(service_setup(settings.spark_setup()), f"k2-rebuild-{layer}")
    columns = (TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, transient=False) as progress:
            chosen = cast(Layer, layer)
            task = progress.add_task(f"rebuilding {layer}", total=steps_of(chosen, names))

            def advance(table: str) -> None:
                progress.update(task, advance=1, description=f"{table} rebuilt")

            report = rebuild(spark, settings, chosen, names, Window(start, end), advance)
    finally:
        spark.stop()
    for table, rows in sorted(report.rows.items()):
        click.echo(f"{table}: {rows} rows in the rebuilt range")


@job.command("spark-conf")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the properties (default: K2_HOME/spark/k2-spark.conf).",
)
@click.pass_context
def job_spark_conf(ctx: click.Context, output: Path | None) -> None:
    """Write K2's Spark properties for spark-submit and print the file's path.

    The file holds the jars, the Iceberg catalog k2 and every other setting the jobs use, with
    owner-only permissions (it carries the catalog's credentials). Run a job on a cluster with:

    \b
      PYSPARK_PYTHON=.venv/bin/python spark-submit \\
        --properties-file "$(k2 job spark-conf)" --master MASTER src/k2/__main__.py job stream

    What spark-submit is given (--master, --conf) wins over K2_SPARK__* settings.
    """
    from k2.jobs.session import write_submit_properties

    settings = settings_of(ctx)
    path = output or settings.stack.home / "spark" / "k2-spark.conf"
    click.echo(write_submit_properties(settings.spark_setup(), path.resolve()))
