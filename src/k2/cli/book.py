"""``k2 book``: an exchange's order book of one symbol at any instant, or its top over a range,
rebuilt from Silver."""

from __future__ import annotations

import json
from typing import Any

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
    "--bbo",
    is_flag=True,
    help="Instead of the book at --at: the best bid and ask over --start..--end, a row at each "
    "instant either changed, with spread and mid.",
)
@click.option("--start", help="With --bbo: RFC 3339 time (default: end - 1 hour).")
@click.option("--end", help="With --bbo: RFC 3339 time, exclusive (default: now).")
@click.option(
    "--limit",
    type=click.IntRange(1, 1_000_000),
    default=1000,
    show_default=True,
    help="With --bbo: most rows.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: bids beside asks (or one row per change); json: prices and sizes as exact "
    "decimal text.",
)
@click.pass_context
def book_command(
    ctx: click.Context,
    exchange: str,
    symbol: str,
    at_text: str | None,
    depth: int,
    bbo: bool,
    start: str | None,
    end: str | None,
    limit: int,
    fmt: str,
) -> None:
    """The order book of SYMBOL (unified, e.g. BTC/USD) on EXCHANGE at an instant.

    Rebuilt from silver.book_changes: the newest snapshot K2 received at or before the instant,
    then every later message up to it, in the order recorded. The times are K2's receive times.
    Says whether every message applied was verified against the exchange's checksum or sequence.
    Needs the exchange's books captured (K2_INGEST__<EXCHANGE>__BOOKS=true) at that time.
    """
    from datetime import UTC, datetime, timedelta

    from k2.api.params import parse_time, parse_window
    from k2.errors import ApiRequestError, ConfigError, QueryError
    from k2.lake.books import book_at, top_of_book
    from k2.lake.query import LakeViews, quoted_name

    settings = settings_of(ctx)
    identifier = f"{settings.lake.namespace_prefix}silver.book_changes"
    try:
        at = parse_time("--at", at_text) or datetime.now(UTC)
        window = parse_window(start, end, timedelta(hours=1), timedelta(days=3660), "--bbo")
    except ApiRequestError as exc:
        raise ConfigError(str(exc)) from exc
    views = LakeViews(settings.lake_access())
    views.refresh()
    if identifier not in views.tables:
        raise QueryError(
            f"{identifier} does not exist: no exchange's books were captured yet "
            "(K2_INGEST__<EXCHANGE>__BOOKS=true, then run the pipeline)"
        )
    table = quoted_name(identifier)
    if bbo:
        tops, following = top_of_book(views.connection, table, exchange, symbol, window, limit)
        _show_tops([top.document() for top in tops], following, fmt)
        return
    book = book_at(views.connection, table, exchange, symbol, at, depth)
    if fmt == "json":
        click.echo(json.dumps(book.document()))
        return
    document = book.document()
    state = (
        "verified" if book.verified else "NOT verified (gold.gaps has the interval, stream book)"
    )
    click.echo(
        f"{book.exchange} {book.symbol} at {document['at']}: {book.messages} messages from "
        f"the snapshot received {document['snapshot_at']}, {state}"
    )
    row = "{:>26} {:>26} | {:<26} {:<26}"
    click.echo(row.format("bid size", "bid", "ask", "ask size"))
    bids, asks = document["bids"], document["asks"]
    for index in range(max(len(bids), len(asks))):
        bid = bids[index][::-1] if index < len(bids) else ["", ""]
        ask = asks[index] if index < len(asks) else ["", ""]
        click.echo(row.format(*bid, *ask))


def _show_tops(rows: list[dict[str, Any]], following: Any, fmt: str) -> None:
    if fmt == "json":
        next_start = None if following is None else following.isoformat()
        click.echo(json.dumps({"data": rows, "next_start": next_start}))
        return
    line = "{:<27} {:>20} {:>20} {:>20} {:>20} {:>14} {:>22} {}"
    names = ("time (UTC)", "bid size", "bid", "ask", "ask size", "spread", "mid", "verified")
    click.echo(line.format(*names))
    for row in rows:
        cells = [row[name] or "-" for name in ("bid_size", "bid", "ask", "ask_size")]
        spread, mid = row["spread"] or "-", row["mid"] or "-"
        click.echo(
            line.format(row["time"], *cells, spread, mid, "yes" if row["verified"] else "NO")
        )
    if following is not None:
        click.echo(f"more from {following.isoformat()} (--start)")
