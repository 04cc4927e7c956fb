"""``k2 deploy``: monitoring files generated from K2's settings, so they never drift from it."""

from __future__ import annotations

from pathlib import Path

import click

from k2.cli.context import K2Group, settings_of


@click.group(cls=K2Group)
def deploy() -> None:
    """Write Prometheus and Grafana files for K2's services (from the current settings)."""


@deploy.command("prometheus")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("deploy/prometheus"),
    show_default=True,
    help="Folder to write prometheus.yml and rules/k2.yml into.",
)
@click.pass_context
def deploy_prometheus(ctx: click.Context, output: Path) -> None:
    """Write a scrape config for every K2 service and K2's alert rules.

    Ports come from K2_INGEST__METRICS_PORT, K2_STREAM__METRICS_PORT (and the exchanges),
    thresholds from K2_ALERTS__*. Check it with `promtool check config <folder>/prometheus.yml`.
    """
    from k2.monitoring.prometheus_config import write_prometheus_files

    for path in write_prometheus_files(settings_of(ctx), output):
        click.echo(f"wrote {path}")


@deploy.command("grafana")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("deploy/grafana"),
    show_default=True,
    help="Folder to write provisioning/ and dashboards/ into.",
)
@click.option(
    "--dashboards-path",
    default="/var/lib/grafana/dashboards/k2",
    show_default=True,
    help="Where Grafana will find the dashboards (copy <output>/dashboards there).",
)
@click.pass_context
def deploy_grafana(ctx: click.Context, output: Path, dashboards_path: str) -> None:
    """Write Grafana provisioning (the K2 Prometheus data source) and K2's dashboards.

    The data source points at the local Prometheus (K2_PROMETHEUS__PORT on the stack host);
    dashboards have fixed uids: k2-overview and k2-venue.
    """
    from k2.monitoring.dashboards import write_grafana_files

    settings = settings_of(ctx)
    written = write_grafana_files(settings.prometheus, settings.stack.host, output, dashboards_path)
    for path in written:
        click.echo(f"wrote {path}")
