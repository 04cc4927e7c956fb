"""``k2 config``: inspect the effective settings."""

from __future__ import annotations

import json

import click

from k2.cli.context import K2Group, settings_of
from k2.config import masked_dump


@click.group(cls=K2Group)
def config() -> None:
    """Inspect K2's settings."""


@config.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the effective settings as JSON, secrets masked."""
    click.echo(json.dumps(masked_dump(settings_of(ctx)), indent=2, sort_keys=True))
