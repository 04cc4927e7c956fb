"""``k2 book``: an exchange's order book of one symbol at any instant, rebuilt from Silver."""

from __future__ import annotations

import json

import click

from k2.cli.context import settings_of


@click.command("book")
@click.argument("exchange")
@click.argument("symbol")
@click.option(
    "--at", "at_text", help="RFC 3339 instant, UTC unless it has an offset (default: now)."
)
@click.option(
    "--depth",
    type=click.IntRange(1, 5000),
    default=10,
    show_default=True,
    help="Levels a side to show.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: bids beside asks; json: one object, prices and sizes as exact decimal text.",
)
@click.pass_context
def book_command(
    ctx: click.Context, exchange: str, symbol: str, at_text: str | None, depth: int, fmt: str
) -> None:
    """The order book of SYMBOL (unified, e.g. BTC/USD) on EXCHANGE at an instant.

    Rebuilt from silver.book_changes: the newest snapshot K2 received at or before the instant,
    then every later message up to it, in the order recorded. The times are K2's receive times.
    Says whether every message applied was verified against the exchange's checksum or sequence.
    Needs the exchange's books captured (K2_INGEST__<EXCHANGE>__BOOKS=true) at that time.
    """
    from datetime import UTC, datetime

    from k2.api.params import parse_time
    from k2.errors import ApiRequestError, ConfigError, QueryError
    from k2.lake.books import book_at
    from k2.lake.export import decimal_text
    from k2.lake.query import LakeViews, quoted_name

    settings = settings_of(ctx)
    try:
        at = parse_time("--at", at_text) or datetime.now(UTC)
    except ApiRequestError as exc:
        raise ConfigError(str(exc)) from exc
    identifier = f"{settings.lake.namespace_prefix}silver.book_changes"
    views = LakeViews(settings.lake_access())
    views.refresh()
    if identifier not in views.tables:
        raise QueryError(
            f"{identifier} does not exist: no exchange's books were captured yet "
            "(K2_INGEST__<EXCHANGE>__BOOKS=true, then run the pipeline)"
        )
    book = book_at(views.connection, quoted_name(identifier), exchange, symbol, at, depth)
    if fmt == "json":
        click.echo(json.dumps(book.document()))
        return
    state = (
        "verified" if book.verified else "NOT verified (gold.gaps has the interval, stream book)"
    )
    click.echo(
        f"{book.exchange} {book.symbol} at {book.at.isoformat()}: {book.messages} messages from "
        f"the snapshot received {book.snapshot_at.isoformat()}, {state}"
    )
    row = "{:>26} {:>26} | {:<26} {:<26}"
    click.echo(row.format("bid size", "bid", "ask", "ask size"))
    for index in range(max(len(book.bids), len(book.asks))):
        bid = book.bids[index] if index < len(book.bids) else None
        ask = book.asks[index] if index < len(book.asks) else None
        cells = [*(("", "") if bid is None else map(decimal_text, bid[::-1]))]
        cells += [*(("", "") if ask is None else map(decimal_text, ask))]
        click.echo(row.format(*cells))
