"""``k2 stack``: the embedded default stack (a local Kafka broker and schema registry), or with
``--cluster`` the local multi-server cluster."""

from __future__ import annotations

from typing import Any

import click
import structlog

from k2.cli.context import K2Group, settings_of
from k2.cli.output import service_table
from k2.config import Settings
from k2.version import git_sha, k2_version

_CLUSTER = click.option(
    "--cluster",
    is_flag=True,
    help="The local cluster instead: three Kafka brokers, the schema registry, PostgreSQL, an "
    "S3 server (SeaweedFS), Iceberg's REST catalog and a Spark master with two workers, real "
    "servers on 127.0.0.1 with their state in K2_HOME/cluster.",
)
_CATALOG = click.option(
    "--catalog",
    type=click.Choice(["jdbc", "rest"]),
    default=None,
    help="With --cluster: which catalog the env file points K2 at, the JDBC catalog on "
    "PostgreSQL (default) or the REST catalog server.",
)


@click.group(cls=K2Group)
def stack() -> None:
    """Run the embedded default stack: a local Kafka broker and schema registry (and a local
    Prometheus when one is installed, K2_PROMETHEUS__LOCAL).

    With --cluster, run the local cluster instead: K2's multi-server setup on this machine
    (three KRaft brokers, the registry, PostgreSQL, an S3 server, Iceberg's REST catalog, a
    Spark master and two workers). `up --cluster` writes K2_HOME/cluster/env; `source` it and
    K2 runs on the cluster, with no other change.

    State (data, logs, pid files) lives in K2_HOME (default ./.k2). Services bind to 127.0.0.1
    (the REST catalog server cannot be told an address: it listens on every interface).
    """


@stack.command("up")
@_CLUSTER
@_CATALOG
@click.pass_context
def stack_up(ctx: click.Context, cluster: bool, catalog: str | None) -> None:
    """Start the broker and the registry (a no-op for what already runs), create K2's topics.

    With --cluster, start every server of the local cluster that is down (ports and generated
    credentials are kept in K2_HOME/cluster/cluster.json, so a later `up` reuses them), then
    write K2_HOME/cluster/env for `source` and show its lines (secret values only in the file).
    """
    settings = settings_of(ctx)
    if cluster:
        _cluster_up(settings, catalog or "jdbc")
        return
    _no_catalog_without_cluster(catalog)
    from k2.stack.manager import Stack
    from k2.transport.topics import TopicAdmin, k2_topics

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
    for spec, outcome in TopicAdmin(settings.kafka_config()).ensure(
        k2_topics(settings.kafka, settings.exchanges, settings.book_exchanges)
    ):
        if outcome == "created":
            click.echo(f"topic {spec.name}: created ({spec.partitions} partitions)")
    _print_status(settings)


@stack.command("down")
@_CLUSTER
@click.pass_context
def stack_down(ctx: click.Context, cluster: bool) -> None:
    """Stop a `k2 run` of this K2_HOME, then the services (SIGTERM, bounded wait, SIGKILL).

    Every K2 process recorded for the state folder stops, also one whose start failed half-way.
    Data stays in K2_HOME. With --cluster, stop every server of the local cluster instead.
    """
    settings = settings_of(ctx)
    if cluster:
        for name, stopped in _local_cluster(settings).down():
            click.echo(f"{name}: {'stopped' if stopped else 'not running'}")
        return
    from k2.run.record import stop_run
    from k2.stack.manager import Stack

    for what in stop_run(settings.stack.state_dir, timeout_s=240.0):
        click.echo(f"{what}: stopped")
    for name, stopped in Stack(settings).down():
        click.echo(f"{name}: {'stopped' if stopped else 'not running'}")


@stack.command("status")
@_CLUSTER
@click.pass_context
def stack_status(ctx: click.Context, cluster: bool) -> None:
    """Show each service: up or down, address, pid, version, uptime and log file (with
    --cluster, each server of the local cluster)."""
    settings = settings_of(ctx)
    if not cluster:
        _print_status(settings)
        return
    local = _local_cluster(settings)
    if not local.exists:
        click.echo(f"no local cluster in {local.dir}; start one with `k2 stack up --cluster`")
        return
    service_table(local.status(), click.echo)
    if local.env_file.exists():
        click.echo(f"env file: {local.env_file}")


def _print_status(settings: Settings) -> None:
    from k2.stack.manager import Stack

    optional = settings.prometheus.local == "auto"
    rows = [
        row
        for row in Stack(settings).status()
        if row.up or not optional or row.name != "prometheus"
    ]
    service_table(rows, click.echo)


def _local_cluster(settings: Settings) -> Any:
    from k2.stack.cluster import LocalCluster

    return LocalCluster(settings.stack)


def _cluster_up(settings: Settings, catalog: str) -> None:
    from k2.stack.cluster.environment import export_lines

    local = _local_cluster(settings)
    structlog.get_logger("k2.stack").info(
        "cluster_starting", version=k2_version(), git_sha=git_sha(), home=str(local.dir)
    )
    for name, started in local.up():
        click.echo(f"{name}: {'started' if started else 'already running'}")
    path = local.write_env_file(catalog)
    click.echo(f"env file ({catalog} catalog): {path}; `source` it to run K2 on the cluster:")
    for line in export_lines(local.environment(catalog), reveal=False):
        click.echo(f"  {line}")


def _no_catalog_without_cluster(catalog: str | None) -> None:
    if catalog is not None:
        raise click.UsageError("--catalog chooses the local cluster's catalog: add --cluster")
