"""``k2 sql``: SQL over every table of catalog ``k2``, by DuckDB (default) or Spark."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from k2.cli.context import settings_of
from k2.cli.output import print_result
from k2.config import Settings
from k2.errors import QueryError

_PROMPT, _MORE = "k2> ", "... "
_QUIT = {"exit", "quit", ".quit", "\\q"}

Runner = Callable[[str], Any]


def _duckdb_runner(settings: Settings) -> Runner:
    import duckdb

    from k2.lake.query import LakeViews

    views = LakeViews(settings.lake_access())
    views.refresh()

    def run(statement: str) -> Any:
        views.refresh()  # once per statement: a prompt left open sees new commits
        try:
            result = views.connection.execute(statement)
            return result.arrow().read_all() if result.description else None
        except duckdb.Error as exc:
            raise QueryError(" ".join(str(exc).split())) from exc

    return run


def _spark_runner(settings: Settings) -> Runner:
    from pyspark.errors import PySparkException

    from k2.jobs.session import build_session

    spark = build_session(settings.spark_setup(), "k2-sql")

    def run(statement: str) -> Any:
        try:
            frame = spark.sql(statement)
            return frame.toArrow() if frame.columns else None
        except PySparkException as exc:
            raise QueryError(str(exc).strip().splitlines()[0]) from exc

    return run


def _show(table: Any, fmt: str, output: Path | None, expanded: bool | None) -> None:
    from k2.lake.export import encode

    if fmt == "table":
        _print_table(table, expanded)
        return
    if fmt == "parquet" and output is None:
        raise QueryError("--format parquet writes binary; give --output FILE")
    chunks = encode(fmt, table.schema, table.to_batches())  # type: ignore[arg-type]
    if output is None:
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    with output.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    click.echo(f"{table.num_rows} rows written to {output}", err=True)


def _print_table(table: Any, expanded: bool | None) -> None:
    from rich.console import Console

    print_result(table, Console(), expanded)


def _interactive(run: Runner, history: Path, expanded: bool | None) -> None:
    """A prompt with line editing and a history file; a statement ends with ``;``."""
    import readline  # line editing and history for input()

    history.parent.mkdir(parents=True, exist_ok=True)
    if history.exists():
        readline.read_history_file(history)
    click.echo("SQL over catalog k2 (tables as gold.trades, ...); end with ';', quit with \\q")
    lines: list[str] = []
    try:
        while True:
            try:
                line = input(_MORE if lines else _PROMPT)
            except EOFError:
                break
            if not lines and line.strip().lower() in _QUIT:
                break
            lines.append(line)
            statement = "\n".join(lines).strip()
            if not statement or not statement.endswith(";"):
                continue
            lines = []
            if not sys.stdin.isatty():  # readline records only what it read from a terminal
                readline.add_history(statement)
            try:
                result = run(statement)
                if result is not None:
                    _print_table(result, expanded)
            except QueryError as exc:
                click.echo(f"error: {exc}", err=True)
    finally:
        readline.set_history_length(1000)
        readline.write_history_file(history)


@click.command("sql")
@click.argument("statement", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
    help="Output of a one-shot statement.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the result to FILE instead of the terminal.",
)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="DuckDB in this process, or the same statement through Spark SQL.",
)
@click.option(
    "--expanded/--no-expanded",
    "-x",
    default=None,
    help="One block of 'column | value' lines per record, or always the table; by default "
    "records when the table is wider than the terminal.",
)
@click.pass_context
def sql(
    ctx: click.Context,
    statement: str | None,
    fmt: str,
    output: Path | None,
    engine: str,
    expanded: bool | None,
) -> None:
    """Run SQL over the lakehouse: every table is named like the table (gold.trades, ...).

    With STATEMENT it runs once and prints the result; without, it opens a prompt with
    history. Decimals print exactly, times in UTC with microseconds. A result too wide for
    the terminal prints as records, as psql's expanded display.
    """
    if expanded is not None and statement is not None and fmt != "table":
        flag = "--expanded" if expanded else "--no-expanded"
        raise QueryError(f"{flag} chooses how the terminal table is drawn; --format {fmt} has none")
    if output is not None and fmt == "table":
        raise QueryError("--output writes a file: give --format csv, json or parquet with it")
    settings = settings_of(ctx)
    run = _spark_runner(settings) if engine == "spark" else _duckdb_runner(settings)
    if statement is None:
        _interactive(run, settings.stack.state_dir / "sql_history", expanded)
        return
    result = run(statement)
    if result is not None:
        _show(result, fmt, output, expanded)
