"""``k2 coverage``: per symbol and hour, trades in Gold and the gaps not backfilled."""

from __future__ import annotations

import click

from k2.cli.context import settings_of

_ROW = "{:<9} {:<11} {:<21} {:>9}  {:<9} {}"


@click.command("coverage")
@click.option("--exchange", help="Only this exchange.")
@click.option("--symbol", help="Only this canonical symbol, e.g. BTC/USD.")
@click.option("--start", help="RFC 3339 time (default: end - 24 hours).")
@click.option("--end", help="RFC 3339 time, exclusive (default: now).")
@click.option(
    "--all-hours",
    is_flag=True,
    help="Also list complete hours (default: only hours that are not complete, then a total).",
)
@click.pass_context
def coverage_command(
    ctx: click.Context,
    exchange: str | None,
    symbol: str | None,
    start: str | None,
    end: str | None,
    all_hours: bool,
) -> None:
    """Which hours are complete: trade count per symbol and hour beside unfilled gap events.

    An hour is complete with trades and no unfilled gap, `gaps` when a gap the ingest could
    not backfill overlaps it, `empty` with neither.
    """
    from datetime import timedelta

    from k2.api.coverage import coverage
    from k2.api.params import parse_window
    from k2.api.reader import LakeReader
    from k2.errors import ApiRequestError, ConfigError

    settings = settings_of(ctx)
    try:
        window = parse_window(start, end, timedelta(hours=24), timedelta(days=3660), "coverage")
    except ApiRequestError as exc:
        raise ConfigError(str(exc)) from exc
    reader = LakeReader(settings.api, settings.lake_access())
    reader.refresh()
    rows = coverage(reader, window, exchange, symbol)
    click.echo(_ROW.format("exchange", "symbol", "hour (UTC)", "trades", "status", "unfilled gaps"))
    shown = 0
    for row in rows:
        if row["status"] == "complete" and not all_hours:
            continue
        shown += 1
        gaps = "; ".join(_gap_text(g) for g in row["unfilled_gaps"]) or "-"
        hour = row["hour"][:16].replace("T", " ")
        click.echo(
            _ROW.format(
                row["exchange"], row["symbol"], hour, row["trade_count"], row["status"], gaps
            )
        )
    complete = sum(1 for r in rows if r["status"] == "complete")
    click.echo(f"{complete} of {len(rows)} symbol-hours complete")


def _gap_text(gap: dict[str, object]) -> str:
    if gap["first_missing_id"] is not None:
        span = f"ids {gap['first_missing_id']}..{gap['last_missing_id']}"
    else:
        span = f"{gap['from']}..{gap['to']}"
    return f"{span} ({gap['detected_by']}: {gap['reason'] or 'not backfilled'})"
