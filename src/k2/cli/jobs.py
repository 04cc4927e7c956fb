"""``k2 job``: K2's Spark jobs."""

from __future__ import annotations

from pathlib import Path

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
    help="Stream only this exchange; repeatable (default: every configured exchange).",
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
    from k2.jobs.stream import run_stream  # noqa: PLC0415

    settings = settings_of(ctx)
    run_stream(settings, list(exchanges) or None, stop_on_signals())


@job.command("bronze", hidden=True)
@_EXCHANGE_OPTION
@click.pass_context
def job_bronze(ctx: click.Context, exchanges: tuple[str, ...]) -> None:
    """The former name of `k2 job stream`, which now writes every layer; runs it."""
    click.echo("note: `k2 job bronze` is now `k2 job stream` (every layer); running it", err=True)
    ctx.invoke(job_stream, exchanges=exchanges)


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
    from k2.jobs.session import write_submit_properties  # noqa: PLC0415

    settings = settings_of(ctx)
    path = output or settings.stack.home / "spark" / "k2-spark.conf"
    click.echo(write_submit_properties(settings, path.resolve()))
