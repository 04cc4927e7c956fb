"""The root ``k2`` group, with every command group attached."""

from __future__ import annotations

import click

from k2.cli import (
    api,
    book,
    config_cmd,
    coverage,
    deploy,
    doctor,
    ingest,
    jobs,
    lake,
    run,
    simulate,
    sql,
    stack,
    status,
    topics,
)
from k2.cli.context import K2Group
from k2.version import git_sha, k2_version


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--version``; the git sha is looked up only when asked for."""
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"k2 {k2_version()} ({git_sha()})")
    ctx.exit()


@click.group(cls=K2Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and git sha, then exit.",
)
def main() -> None:
    """K2: every public trade from crypto exchanges, in an Iceberg lakehouse you query with SQL.

    Settings come from K2_* environment variables and an optional .env file
    (`k2 config show` lists them). Start with `k2 run`: the whole pipeline (add
    --source simulator without internet access).
    """


for _command in (
    config_cmd.config,
    stack.stack,
    topics.topics,
    lake.lake,
    simulate.simulate,
    jobs.job,
    ingest.ingest,
    run.run_command,
    deploy.deploy,
    status.status,
    doctor.doctor,
    sql.sql,
    api.api,
    coverage.coverage_command,
    book.book_command,
):
    main.add_command(_command)
