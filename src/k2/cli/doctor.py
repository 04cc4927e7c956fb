"""``k2 doctor``: find the first broken stage of the pipeline."""

from __future__ import annotations

import json
import sys

import click

from k2.cli.output import doctor_line, doctor_verdict


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON, for scripts.")
@click.option(
    "--trade-timeout",
    "trade_timeout_s",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for a live trade, and for deliveries and offsets to move.",
)
def doctor(as_json: bool, trade_timeout_s: float) -> None:
    """Check each stage in the order data flows and name the first broken one.

    \b
    settings → Java and JVM artifacts → broker → registry and subjects → catalog → the exchange
    (reference data, a live trade on a fresh subscription) → each ingest delivering → raw topic
    offsets moving → the streaming job committing, lag bounded → every layer fresh → every
    service on the installed build.

    A broken stage prints its cause and its fix, one line each; the stages after it are not
    reached, and the exit code is 1.
    """
    from k2.config import load_settings
    from k2.observability.logging import configure_logging
    from k2.ops.checks import Doctor
    from k2.ops.doctor import run_stages

    # The checklist is the output: the clients' own logs would only interleave with it.
    configure_logging("ERROR")

    def echo(check: object) -> None:
        if not as_json:
            for line in doctor_line(check):
                click.echo(line)

    report = run_stages(Doctor(load_settings, trade_timeout_s).stages(), echo)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        click.echo(doctor_verdict(report))
    if report.broken is not None:
        sys.exit(1)
