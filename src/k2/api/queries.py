"""The API's SQL over Gold and the bars: fixed statements, every value a parameter.

Each statement reads one table at one snapshot (``iceberg_scan(location, snapshot_from_id)``),
so a request, and every page of a paginated read, sees one consistent version of the table. The
text of a statement is chosen among constants, never built from what a request sent.

Trades are ordered chronologically: by ``exchange_ts``, then the trade id as a number (ids are
per-symbol sequences; a protocol without ids sorts as -1), then ``message_id``, which is unique
in Gold, so the order is total and a page boundary (:class:`TradeKey`) is exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from k2.domain import Trade, datetime_from_micros
from k2.lake.query import TableSnapshot
from k2.lake.tables import gold_bars

TRADE_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Trade))
BAR_COLUMNS: tuple[str, ...] = tuple(gold_bars("1m").column_names())
SEQ_COLUMN = "__seq"
_SEQ = "coalesce(TRY_CAST(trade_id AS BIGINT), -1)"
_TRADES = ", ".join(TRADE_COLUMNS)
_BARS = ", ".join(BAR_COLUMNS)


@dataclass(frozen=True)
class TradeKey:
    """A trade's place in the chronological order (where a page ends)."""

    exchange_ts_us: int
    seq: int
    message_id: str


@dataclass(frozen=True)
class Statement:
    sql: str
    params: list[Any]


def _source(table: TableSnapshot, snapshot_id: int | None) -> tuple[str, list[Any]]:
    if snapshot_id is None:
        return "iceberg_scan(?)", [table.location]
    return "iceberg_scan(?, snapshot_from_id => ?)", [table.location, snapshot_id]


def _key_bound(key: TradeKey, operator: str) -> tuple[str, list[Any]]:
    """``AND (exchange_ts, seq, message_id) <operator> key``, beside a plain bound on
    ``exchange_ts`` that lets the scan prune partitions and files."""
    moment = datetime_from_micros(key.exchange_ts_us)
    plain = ">=" if operator == ">" else "<="
    sql = (
        f" AND exchange_ts {plain} ? AND (exchange_ts, {_SEQ}, message_id) {operator} "
        "(?::TIMESTAMPTZ, ?::BIGINT, ?::VARCHAR)"
    )
    return sql, [moment, moment, key.seq, key.message_id]


def trades_page(
    table: TableSnapshot,
    snapshot_id: int | None,
    series: tuple[str, str],
    window: tuple[datetime, datetime],
    after: TradeKey | None,
    limit: int,
    before: TradeKey | None = None,
) -> Statement:
    """Trades of one (exchange, symbol) in ``[start, end)``, after ``after`` and before
    ``before``, in order; one row more than ``limit`` so the caller knows whether another page
    follows."""
    source, params = _source(table, snapshot_id)
    sql = (
        f"SELECT {_TRADES}, {_SEQ} AS {SEQ_COLUMN} FROM {source} "
        "WHERE exchange = ? AND symbol = ? AND exchange_ts >= ? AND exchange_ts < ?"
    )
    params += [*series, *window]
    for key, operator in ((after, ">"), (before, "<")):
        if key is not None:
            bound, values = _key_bound(key, operator)
            sql += bound
            params += values
    sql += f" ORDER BY exchange_ts, {_SEQ}, message_id LIMIT ?"
    return Statement(sql, [*params, limit + 1])


def page_end(page: Statement, limit: int) -> Statement:
    """The order columns of the last row of ``page`` and of the row after it (two rows when
    another page follows), reading nothing else."""
    sql = (
        f"SELECT exchange_ts, {SEQ_COLUMN}, message_id FROM ({page.sql}) "
        f"ORDER BY exchange_ts, {SEQ_COLUMN}, message_id LIMIT 2 OFFSET ?"
    )
    return Statement(sql, [*page.params, limit - 1])


def trade_landed(
    table: TableSnapshot, snapshot_id: int | None, series: tuple[str, str], key: TradeKey
) -> Statement:
    """1 when the trade at ``key`` is in the table at the snapshot, else 0."""
    source, params = _source(table, snapshot_id)
    sql = (
        f"SELECT count(*) FROM {source} WHERE exchange = ? AND symbol = ? "
        "AND exchange_ts = ? AND message_id = ?"
    )
    moment = datetime_from_micros(key.exchange_ts_us)
    return Statement(sql, [*params, *series, moment, key.message_id])


def latest_trades(
    table: TableSnapshot,
    snapshot_id: int | None,
    series: tuple[str, str],
    window: tuple[datetime, datetime],
    n: int,
) -> Statement:
    """The ``n`` newest trades of one series in ``[start, end)``, newest first."""
    source, params = _source(table, snapshot_id)
    sql = (
        f"SELECT {_TRADES} FROM {source} WHERE exchange = ? AND symbol = ? "
        "AND exchange_ts >= ? AND exchange_ts < ? "
        f"ORDER BY exchange_ts DESC, {_SEQ} DESC, message_id DESC LIMIT ?"
    )
    return Statement(sql, [*params, *series, *window, n])


def bars(
    table: TableSnapshot,
    snapshot_id: int | None,
    series: tuple[str, str],
    window: tuple[datetime, datetime],
    limit: int,
) -> Statement:
    """Bars of one series whose start is in ``[start, end)``, oldest first."""
    source, params = _source(table, snapshot_id)
    sql = (
        f"SELECT {_BARS} FROM {source} WHERE exchange = ? AND symbol = ? "
        "AND bar_start >= ? AND bar_start < ? ORDER BY bar_start LIMIT ?"
    )
    return Statement(sql, [*params, *series, *window, limit])


def symbol_summary(table: TableSnapshot, recent_since: datetime) -> Statement:
    """Per exchange and symbol: first and last trade time, trade count, and trades since
    ``recent_since`` (for a rate)."""
    source, params = _source(table, table.snapshot_id)
    sql = (
        "SELECT exchange, symbol, min(exchange_ts) AS first_trade, max(exchange_ts) AS "
        "last_trade, count(*) AS trade_count, count(*) FILTER (WHERE exchange_ts >= ?) AS "
        f"recent_trades FROM {source} GROUP BY exchange, symbol ORDER BY exchange, symbol"
    )
    return Statement(sql, [recent_since, *params])


def _series_filter(exchange: str | None, symbol: str | None) -> tuple[str, list[Any]]:
    sql, params = "", []
    if exchange is not None:
        sql += " AND exchange = ?"
        params.append(exchange)
    if symbol is not None:
        sql += " AND symbol = ?"
        params.append(symbol)
    return sql, params


def hourly_counts(
    table: TableSnapshot,
    window: tuple[datetime, datetime],
    exchange: str | None,
    symbol: str | None,
) -> Statement:
    """Trades per exchange, symbol and hour (UTC) in ``[start, end)``."""
    source, params = _source(table, table.snapshot_id)
    where, extra = _series_filter(exchange, symbol)
    sql = (
        "SELECT exchange, symbol, date_trunc('hour', exchange_ts) AS hour, count(*) AS trades "
        f"FROM {source} WHERE exchange_ts >= ? AND exchange_ts < ?{where} "
        "GROUP BY ALL ORDER BY ALL"
    )
    return Statement(sql, [*params, *window, *extra])


GAP_COLUMNS = (
    "exchange",
    "symbol",
    "exchange_symbol",
    "first_missing_id",
    "last_missing_id",
    "from_us",
    "to_us",
    "detected_by",
    "reason",
    "detected_us",
)


def unfilled_gaps(
    table: TableSnapshot,
    window: tuple[datetime, datetime],
    exchange: str | None,
    symbol: str | None,
) -> Statement:
    """Trade gap events not backfilled whose interval (or detection time, for an id range
    without times) overlaps ``[start, end)`` (an order book's unverified intervals are gap
    events of the book stream, not missing trades)."""
    source, params = _source(table, table.snapshot_id)
    where, extra = _series_filter(exchange, symbol)
    sql = (
        f"SELECT {', '.join(GAP_COLUMNS)} FROM {source} WHERE NOT backfilled "
        "AND stream = 'trades' "
        "AND coalesce(to_us, detected_us) >= ? AND coalesce(from_us, detected_us) < ?"
        f"{where} ORDER BY exchange, symbol, coalesce(from_us, detected_us)"
    )
    return Statement(sql, [*params, *window, *extra])


class Page:
    """Batches of a trades page: at most ``limit`` rows, the look-ahead row and the order
    column dropped; after iteration, :attr:`next_key` is where the next page starts (None when
    this page is the last)."""

    def __init__(self, batches: Iterator[pa.RecordBatch], limit: int) -> None:
        self._batches = batches
        self._left = limit
        self.next_key: TradeKey | None = None
        self._last: TradeKey | None = None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._batches:
            if batch.num_rows == 0:
                continue
            if self._left <= 0:  # the look-ahead row: another page follows
                self.next_key = self._last
                return
            if batch.num_rows > self._left:
                part = batch.slice(0, self._left)
                self.next_key = key_of(part, part.num_rows - 1)
                self._left = 0
                yield part.drop_columns([SEQ_COLUMN])
                return
            self._left -= batch.num_rows
            self._last = key_of(batch, batch.num_rows - 1)
            yield batch.drop_columns([SEQ_COLUMN])

    def schema(self, schema: pa.Schema) -> pa.Schema:
        """The schema of the batches this page yields, from the statement's schema."""
        return schema.remove(schema.get_field_index(SEQ_COLUMN))


def key_of(batch: pa.RecordBatch, row: int) -> TradeKey:
    """The :class:`TradeKey` of one row of a trades page batch."""
    return TradeKey(
        exchange_ts_us=int(batch.column("exchange_ts")[row].value),
        seq=int(batch.column(SEQ_COLUMN)[row].as_py()),
        message_id=str(batch.column("message_id")[row].as_py()),
    )


def hours_of(window: tuple[datetime, datetime]) -> Sequence[datetime]:
    """Every UTC hour start from the hour of ``start`` up to (not including) ``end``."""
    start, end = window
    hour = start.replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours
