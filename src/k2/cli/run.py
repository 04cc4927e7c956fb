"""``k2 run``: the whole pipeline on one machine until Ctrl-C."""

from __future__ import annotations

import sys

import click

from k2.cli.context import settings_of, stop_on_signals


@click.command("run")
@click.option(
    "--source",
    type=click.Choice(["live", "simulator"]),
    help="live exchanges, or start the local simulator and feed from it "
    "(default: K2_INGEST__SOURCE, live).",
)
@click.option(
    "--jvm-logs",
    is_flag=True,
    help="Let Spark's JVM log to the console too (default: K2_HOME/logs/stream-jvm.log).",
)
@click.pass_context
def run_command(ctx: click.Context, source: str | None, jvm_logs: bool) -> None:
    """Run the pipeline until Ctrl-C: the stack, one ingest per exchange, the streaming job.

    Brings the embedded stack up where it is not running, starts every part as its own process
    (and the simulator with --source simulator), and on Ctrl-C or SIGTERM stops them in the
    order data flows, then the stack services this run started. Each part logs to
    K2_HOME/logs/<part>.log. In a terminal the console shows a live summary (and this command's
    own log goes to K2_HOME/logs/run.log); otherwise the parts' log lines are copied to stderr.
    """
    from k2.observability.logging import configure_logging
    from k2.run.console import LiveSummary, LogCopier
    from k2.run.supervisor import Console, logs_dir, run_pipeline

    settings = settings_of(ctx)
    chosen = source or settings.ingest.source
    logs = logs_dir(settings.stack)
    stop = stop_on_signals()
    if sys.stderr.isatty() and settings.log_format != "json":
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / "run.log").open("a", encoding="utf-8") as own_log:
            configure_logging(settings.log_level, "json", stream=own_log)
            try:
                summary = LiveSummary(
                    f"K2 · source {chosen} · Ctrl-C stops every part cleanly · logs in {logs}/"
                )
                console = Console(summary.echo, summary.watch, summary.close)
                try:
                    run_pipeline(settings, chosen, stop, console, jvm_logs)
                finally:
                    summary.close()  # also when the stack could not come up
            finally:
                configure_logging(settings.log_level, settings.log_format)
        return
    copier = LogCopier()
    run_pipeline(settings, chosen, stop, Console(click.echo, copier.watch), jvm_logs)
