"""``k2 run``: the whole pipeline on one machine until Ctrl-C."""

from __future__ import annotations

import click

from k2.cli.context import settings_of, stop_on_signals


@click.command("run")
@click.option(
    "--source",
    type=click.Choice(["live", "simulator"]),
    help="live exchanges, or start the local simulator and feed from it "
    "(default: K2_INGEST__SOURCE, live).",
)
@click.pass_context
def run_command(ctx: click.Context, source: str | None) -> None:
    """Run the pipeline until Ctrl-C: the stack, one ingest per exchange, the Bronze job.

    Brings the embedded stack up if it is not running, starts every part as its own process
    (and the simulator with --source simulator), and on Ctrl-C or SIGTERM stops them in the
    order data flows, then the stack services it started. Every part logs to this console.
    """
    from k2.stack.pipeline import run_pipeline  # noqa: PLC0415

    settings = settings_of(ctx)
    run_pipeline(settings, source or settings.ingest.source, stop_on_signals(), click.echo)
