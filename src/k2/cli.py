"""The ``k2`` command: the only place that reads settings, configures logging and starts things.

Every failure K2 expects (a ``K2Error``) is printed as one line, ``error: <cause>; <fix>``, with
exit code 1. Unexpected exceptions keep their traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import structlog

from k2.config import Settings, load_settings, masked_dump
from k2.errors import K2Error
from k2.observability.logging import configure_logging
from k2.version import git_sha, k2_version

F = TypeVar("F", bound=Callable[..., Any])


class K2Group(click.Group):
    """A click group that turns K2 errors into one line on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except K2Error as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


def settings_of(ctx: click.Context) -> Settings:
    """The settings built once by the root command."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = load_settings()
        configure_logging(root.obj.log_level, root.obj.log_format)
    settings: Settings = root.obj
    return settings


@click.group(cls=K2Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(k2_version(), message=f"k2 %(version)s ({git_sha()})")
def main() -> None:
    """K2: every public trade from crypto exchanges, in an Iceberg lakehouse you query with SQL.

    Settings come from K2_* environment variables and an optional .env file
    (`k2 config show` lists them). Start with `k2 stack up`.
    """


# ---------------------------------------------------------------------------------------------
# config


@main.group(cls=K2Group)
def config() -> None:
    """Inspect K2's settings."""


@config.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the effective settings as JSON, secrets masked."""
    click.echo(json.dumps(masked_dump(settings_of(ctx)), indent=2, sort_keys=True))


# ---------------------------------------------------------------------------------------------
# stack


@main.group(cls=K2Group)
def stack() -> None:
    """Run the embedded default stack: a local Kafka broker and schema registry.

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
    for name, started in Stack(settings).up():
        click.echo(f"{name}: {'started' if started else 'already running'}")
    for spec, outcome in TopicAdmin(settings).ensure(k2_topics(settings)):
        if outcome == "created":
            click.echo(f"topic {spec.name}: created ({spec.partitions} partitions)")
    _print_status(settings)


@stack.command("down")
@click.pass_context
def stack_down(ctx: click.Context) -> None:
    """Stop the services (SIGTERM, bounded wait, then SIGKILL). Data stays in K2_HOME."""
    from k2.stack.manager import Stack  # noqa: PLC0415

    for name, stopped in Stack(settings_of(ctx)).down():
        click.echo(f"{name}: {'stopped' if stopped else 'not running'}")


@stack.command("status")
@click.pass_context
def stack_status(ctx: click.Context) -> None:
    """Show each service: up or down, address, pid, version, uptime and log file."""
    _print_status(settings_of(ctx))


def _print_status(settings: Settings) -> None:
    from k2.stack.manager import Stack  # noqa: PLC0415

    row_format = "{:<10} {:<9} {:<44} {:>7} {:<9} {:>8}  {}"
    click.echo(
        row_format.format("component", "state", "address", "pid", "version", "uptime", "log")
    )
    for row in Stack(settings).status():
        state = ("up" if row.healthy else "starting") if row.up else "down"
        uptime = f"{row.uptime_s:.0f}s" if row.uptime_s is not None else "-"
        pid = str(row.pid) if row.pid else "-"
        click.echo(
            row_format.format(row.name, state, row.address, pid, row.version, uptime, row.log)
        )


# ---------------------------------------------------------------------------------------------
# topics


@main.group(cls=K2Group)
def topics() -> None:
    """List, create and describe K2's Kafka topics."""


@topics.command("list")
@click.pass_context
def topics_list(ctx: click.Context) -> None:
    """List the topics on the cluster (internal topics hidden)."""
    from k2.transport.topics import TopicAdmin  # noqa: PLC0415

    for name in TopicAdmin(settings_of(ctx)).names():
        click.echo(name)


@topics.command("create")
@click.pass_context
def topics_create(ctx: click.Context) -> None:
    """Create the raw, DLQ and gap topics of every configured exchange (idempotent)."""
    from k2.transport.topics import TopicAdmin, k2_topics  # noqa: PLC0415

    settings = settings_of(ctx)
    for spec, outcome in TopicAdmin(settings).ensure(k2_topics(settings)):
        click.echo(f"{spec.name}: {outcome} ({spec.partitions} partitions)")


@topics.command("describe")
@click.argument("names", nargs=-1)
@click.pass_context
def topics_describe(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Partitions, replication and non-default settings of NAMES (default: K2's topics)."""
    from k2.transport.topics import TopicAdmin, k2_topics  # noqa: PLC0415

    settings = settings_of(ctx)
    wanted = list(names) or [spec.name for spec in k2_topics(settings)]
    for state in TopicAdmin(settings).describe(wanted):
        conf = " ".join(f"{k}={v}" for k, v in sorted(state.config.items()))
        click.echo(
            f"{state.name}: partitions={state.partitions} replication={state.replication} {conf}"
        )


# ---------------------------------------------------------------------------------------------
# lake


@main.group(cls=K2Group)
def lake() -> None:
    """The Iceberg lakehouse (catalog `k2`)."""


@lake.command("init")
@click.pass_context
def lake_init(ctx: click.Context) -> None:
    """Create the namespaces bronze, silver and gold (idempotent)."""
    from k2.lake.catalog import NAMESPACES, ensure_namespaces, open_catalog  # noqa: PLC0415

    created = ensure_namespaces(open_catalog(settings_of(ctx)))
    for namespace in NAMESPACES:
        click.echo(f"k2.{namespace}: {'created' if namespace in created else 'exists'}")
