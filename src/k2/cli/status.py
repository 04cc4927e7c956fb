"""``k2 status``: the running pipeline and where its data stands, in one screen."""

from __future__ import annotations

import json

import click

from k2.cli.context import settings_of, stop_on_signals
from k2.cli.output import not_running_line, status_renderable


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON, for scripts.")
@click.option("--watch", is_flag=True, help="Redraw the status until Ctrl-C.")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=5.0,
    show_default=True,
    help="Seconds between redraws with --watch.",
)
@click.pass_context
def status(ctx: click.Context, as_json: bool, watch: bool, interval: float) -> None:
    """Every part of the pipeline (up/down, address, pid, uptime, version, git sha) and the data.

    Per symbol: age of the last trade, delivered per second, unfilled gaps in the last hour; per
    raw topic: end offsets, what Bronze settled, lag; per table: rows, newest row and its age
    (bars: when last written), rows in the last minute; and the records kept aside (DLQ, Bronze
    rejects, quarantine). A service whose git sha differs from the installed code is marked as
    running stale code.
    """
    from rich.console import Console
    from rich.live import Live

    from k2.ops.status import collect_status

    settings = settings_of(ctx)
    if as_json:
        click.echo(json.dumps(collect_status(settings).as_json(), indent=2, default=str))
        return
    # Off a terminal (a pipe, a file) lines are kept whole rather than wrapped at 80 columns.
    console = Console() if click.get_text_stream("stdout").isatty() else Console(width=200)
    if not watch:
        found = collect_status(settings)
        if not found.running:
            click.echo(not_running_line(found.home))
            return
        console.print(status_renderable(found))
        return
    stop = stop_on_signals()
    with Live(status_renderable(collect_status(settings)), console=console) as live:
        while not stop.wait(interval):
            live.update(status_renderable(collect_status(settings)), refresh=True)
