"""``k2 stack``: the embedded default stack (a local Kafka broker and schema registry)."""

from __future__ import annotations

import click
import structlog

from k2.cli.context import K2Group, settings_of
from k2.cli.output import service_table
from k2.config import Settings
from k2.version import git_sha, k2_version


@click.group(cls=K2Group)
def stack() -> None:
    """Run the embedded default stack: a local Kafka broker and schema registry (and a local
    Prometheus when one is installed, K2_PROMETHEUS__LOCAL).

    State (data, logs, pid files) lives in K2_HOME (default ./.k2). Services bind to 127.0.0.1.
    """


@stack.command("up")
@click.pass_context
def stack_up(ctx: click.Context) -> None:
    """Start the broker and the registry (a no-op for what already runs), create K2's topics."""
    from k2.stack.manager import Stack  # noqa: PLC0415 - keep `k2 --help` fast
    from k2.transport.topics import TopicAdmin, k2_topics  # noqa: PLC0415

    settings = settings_of(ctx)
    log = structlog.get_logger("k2.stack")
    log.info(
        "stack_starting",
        version=k2_version(),
        git_sha=git_sha(),
        home=str(settings.stack.state_dir),
    )
    stack = Stack(settings)
    for name, started in stack.up():
        click.echo(f"{name}: {'started' if started else 'already running'}")
    for name, reason in stack.skipped:
        click.echo(f"{name}: not started ({reason})")
    for spec, outcome in TopicAdmin(settings).ensure(k2_topics(settings)):
        if outcome == "created":
            click.echo(f"topic {spec.name}: created ({spec.partitions} partitions)")
    _print_status(settings)


@stack.command("down")
@click.pass_context
def stack_down(ctx: click.Context) -> None:
    """Stop a `k2 run` of this K2_HOME, then the services (SIGTERM, bounded wait, SIGKILL).

    Every K2 process recorded for the state folder stops, also one whose start failed half-way.
    Data stays in K2_HOME.
    """
    from k2.stack.manager import Stack  # noqa: PLC0415
    from k2.stack.runfile import stop_run  # noqa: PLC0415

    settings = settings_of(ctx)
    for what in stop_run(settings.stack.state_dir, timeout_s=240.0):
        click.echo(f"{what}: stopped")
    for name, stopped in Stack(settings).down():
        click.echo(f"{name}: {'stopped' if stopped else 'not running'}")


@stack.command("status")
@click.pass_context
def stack_status(ctx: click.Context) -> None:
    """Show each service: up or down, address, pid, version, uptime and log file."""
    _print_status(settings_of(ctx))


def _print_status(settings: Settings) -> None:
    from k2.stack.manager import Stack  # noqa: PLC0415

    optional = settings.prometheus.local == "auto"
    rows = [
        row
        for row in Stack(settings).status()
        if row.up or not optional or row.name != "prometheus"
    ]
    service_table(rows, click.echo)
