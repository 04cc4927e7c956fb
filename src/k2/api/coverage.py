"""Completeness per symbol and hour: trades in Gold beside the gap events not backfilled.

An hour is ``complete`` when it has trades and no unfilled gap overlaps it, ``gaps`` when an
unfilled gap does (the gap's id range or time interval is listed), and ``empty`` when it has
neither trades nor gap events (nothing traded, or nothing was running to tell). A gap with an id
range but no times is placed in the hour it was detected.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from k2.api.queries import GAP_COLUMNS, hourly_counts, hours_of, unfilled_gaps
from k2.api.reader import LakeReader
from k2.lake.export import time_text

_HOUR = timedelta(hours=1)


def _gap_view(gap: dict[str, Any]) -> dict[str, Any]:
    first, last = gap["first_missing_id"], gap["last_missing_id"]
    return {
        "exchange_symbol": gap["exchange_symbol"],
        "first_missing_id": first,
        "last_missing_id": last,
        "missing_trades": last - first + 1 if first is not None and last is not None else None,
        "from": time_text(gap["from_us"]) if gap["from_us"] else None,
        "to": time_text(gap["to_us"]) if gap["to_us"] else None,
        "detected_by": gap["detected_by"],
        "reason": gap["reason"],
        "detected_at": time_text(gap["detected_us"]),
    }


def _gaps_by_hour(
    reader: LakeReader, window: tuple[datetime, datetime], series: tuple[str | None, str | None]
) -> dict[tuple[str, str, datetime], list[dict[str, Any]]]:
    table = reader.table(reader.gold_gaps)
    found: dict[tuple[str, str, datetime], list[dict[str, Any]]] = defaultdict(list)
    if table is None:
        return found
    for row in reader.fetch_all(unfilled_gaps(table, window, *series)):
        gap = dict(zip(GAP_COLUMNS, row, strict=True))
        begin = gap["from_us"] or gap["detected_us"]
        end = gap["to_us"] or gap["detected_us"]
        for hour in hours_of((max(begin, window[0]), min(end, window[1]) + timedelta(0, 0, 1))):
            found[(gap["exchange"], gap["symbol"] or gap["exchange_symbol"], hour)].append(
                _gap_view(gap)
            )
    return found


def coverage(
    reader: LakeReader,
    window: tuple[datetime, datetime],
    exchange: str | None = None,
    symbol: str | None = None,
) -> list[dict[str, Any]]:
    """One row per (exchange, symbol, hour) of ``window``, for every series Gold knows (or
    only the given exchange and symbol), oldest hour first."""
    counts: dict[tuple[str, str, datetime], int] = {}
    table = reader.table(reader.gold_trades)
    if table is not None:
        for ex, sym, hour, trades in reader.fetch_all(
            hourly_counts(table, window, exchange, symbol)
        ):
            counts[(ex, sym, hour)] = trades
    gaps = _gaps_by_hour(reader, window, (exchange, symbol))
    series = {key[:2] for key in reader.summary.symbols} | {k[:2] for k in counts}
    series |= {k[:2] for k in gaps}
    series = {
        s for s in series if (exchange is None or s[0] == exchange) and (symbol in (None, s[1]))
    }
    rows = []
    for ex, sym in sorted(series):
        for hour in hours_of(window):
            trades = counts.get((ex, sym, hour), 0)
            unfilled = gaps.get((ex, sym, hour), [])
            status = "gaps" if unfilled else ("complete" if trades else "empty")
            rows.append(
                {
                    "exchange": ex,
                    "symbol": sym,
                    "hour": time_text(hour),
                    "trade_count": trades,
                    "status": status,
                    "unfilled_gaps": unfilled,
                }
            )
    return rows
