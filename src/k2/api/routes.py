"""The ``/v1`` routes over Gold, the bars, the gap events and the order books (read-only)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from k2.api import queries
from k2.api.coverage import coverage
from k2.api.params import (
    Cursor,
    decode_cursor,
    decode_until,
    output_format,
    parse_as_of,
    parse_time,
    parse_window,
)
from k2.api.reader import RECENT_S, LakeReader
from k2.api.security import KeyCheck, RateLimiter, presented_key
from k2.api.windows import PiecewiseResult, first_span
from k2.config import ApiSettings
from k2.domain import BAR_INTERVALS, datetime_from_micros, micros_from_datetime
from k2.errors import ApiRequestError, QueryError
from k2.lake.books import book_at, top_of_book
from k2.lake.export import MEDIA_TYPES, Format, encode, time_text
from k2.lake.query import TableSnapshot

_TIME = "RFC 3339 time, e.g. 2024-05-01T12:00:00Z (no offset: UTC)."
_AS_OF = "Time travel: an Iceberg snapshot id, or a time (the snapshot current then)."
_FORMAT = "json, csv, parquet or arrow (Arrow IPC stream); default: by Accept, else json."


@dataclass
class ApiContext:
    """What every route shares in one API process."""

    settings: ApiSettings
    exchanges: tuple[str, ...]
    reader: LakeReader
    keys: KeyCheck
    limiter: RateLimiter


def context(request: Request) -> ApiContext:
    found: ApiContext = request.app.state.k2
    return found


Ctx = Annotated[ApiContext, Depends(context)]


def guard(request: Request, ctx: Ctx) -> None:
    """API key (when keys are configured) and the rate limit of the key or client address."""
    if ctx.keys.required:
        identity = ctx.keys.identify(presented_key(dict(request.headers)))
    else:
        identity = "addr:" + (request.client.host if request.client else "-")
    ctx.limiter.take(identity)


router = APIRouter(prefix="/v1", dependencies=[Depends(guard)])


def _known_series(ctx: ApiContext, exchange: str, symbol: str) -> tuple[str, str]:
    """404 naming an exchange or a symbol Gold does not know."""
    stats = ctx.reader.summary.symbols
    if exchange not in ctx.exchanges and all(ex != exchange for ex, _ in stats):
        known = sorted(set(ctx.exchanges) | {ex for ex, _ in stats})
        raise ApiRequestError(404, f"unknown exchange {exchange!r}; known: {', '.join(known)}")
    if (exchange, symbol) not in stats:
        raise ApiRequestError(404, f"unknown symbol {symbol!r} on {exchange} (GET /v1/symbols)")
    return exchange, symbol


def _table(ctx: ApiContext, identifier: str) -> TableSnapshot:
    table = ctx.reader.table(identifier)
    if table is None:
        raise ApiRequestError(503, f"table {identifier} does not exist yet; start the pipeline")
    return table


def _snapshot(table: TableSnapshot, as_of: str | None) -> int | None:
    try:
        return table.resolve(parse_as_of(as_of))
    except QueryError as exc:
        raise ApiRequestError(404, str(exc)) from exc


def _respond(
    fmt: Format,
    result: Any,
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    trailer: Any = None,
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    def body() -> Iterator[bytes]:
        try:
            yield from encode(fmt, schema, batches, trailer)
        finally:
            result.close()

    return StreamingResponse(body(), media_type=MEDIA_TYPES[fmt], headers=headers)


def _limit_check(value: int, maximum: int, name: str) -> int:
    if value > maximum:
        raise ApiRequestError(
            400, f"{name}={value} is over the maximum {maximum} (K2_API__MAX_PAGE_SIZE)"
        )
    return value


def _exchange_row(name: str) -> dict[str, Any]:
    return {"exchange": name, "symbols": 0, "trade_count": 0, "first_trade": None,
            "last_trade": None}  # fmt: skip


@router.get(
    "/exchanges",
    summary="Exchanges with trades in Gold, the bar intervals, whether order books are stored",
)
def get_exchanges(ctx: Ctx) -> dict[str, Any]:
    by_exchange = {name: _exchange_row(name) for name in ctx.exchanges}
    for stat in ctx.reader.summary.symbols.values():
        row = by_exchange.setdefault(stat.exchange, _exchange_row(stat.exchange))
        row["symbols"] += 1
        row["trade_count"] += stat.trade_count
        first, last = time_text(stat.first_trade), time_text(stat.last_trade)
        row["first_trade"] = min(filter(None, (row["first_trade"], first)))
        row["last_trade"] = max(filter(None, (row["last_trade"], last)))
    rows = [by_exchange[name] for name in sorted(by_exchange)]
    books = ctx.reader.table(ctx.reader.book_changes) is not None
    return {"data": rows, "intervals": BAR_INTERVALS, "books": books}


@router.get("/symbols", summary="Every exchange and symbol: first and last trade, trade count")
def get_symbols(ctx: Ctx, exchange: str | None = None) -> dict[str, Any]:
    summary = ctx.reader.summary
    rows = [
        {
            "exchange": s.exchange,
            "symbol": s.symbol,
            "first_trade": time_text(s.first_trade),
            "last_trade": time_text(s.last_trade),
            "trade_count": s.trade_count,
            "trades_per_s": round(s.recent_trades / RECENT_S, 3),
        }
        for s in summary.symbols.values()
        if exchange is None or s.exchange == exchange
    ]
    return {"data": rows, "as_of": time_text(summary.made_at)}


@router.get("/trades", summary="Trades of one symbol in chronological order, paginated")
def get_trades(
    request: Request,
    ctx: Ctx,
    exchange: str,
    symbol: Annotated[str, Query(description="Canonical BASE/QUOTE, e.g. BTC/USD.")],
    start: Annotated[str | None, Query(description=_TIME + " Default: end - 1 hour.")] = None,
    end: Annotated[str | None, Query(description=_TIME + " Exclusive. Default: now.")] = None,
    limit: Annotated[int | None, Query(ge=1, description="Trades per page.")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    until: Annotated[
        str | None, Query(description="Only trades before the live stream's first trade.")
    ] = None,
    as_of: Annotated[str | None, Query(description=_AS_OF)] = None,
    format: Annotated[str | None, Query(description=_FORMAT)] = None,
) -> StreamingResponse:
    """Every trade of the window exactly once across pages: each page reads the snapshot the
    first page read, after the last trade of the previous page (``next_cursor``). Decimals are
    exact strings in JSON and CSV, decimal(38,18) in Parquet and Arrow."""
    fmt = output_format(format, request.headers.get("accept"))
    series = _known_series(ctx, exchange, symbol)
    size = _limit_check(
        limit or ctx.settings.default_page_size, ctx.settings.max_page_size, "limit"
    )
    table = _table(ctx, ctx.reader.gold_trades)
    before = decode_until(until) if until is not None else None
    if before is not None and end is None:  # up to the live stream's first trade
        end = time_text(datetime_from_micros(before.exchange_ts_us + 1))
    page_cursor = _page_cursor(ctx, table, series, cursor, start, end, as_of)
    after = _after(cursor, page_cursor)

    def piece(window: tuple[datetime, datetime], wanted: int) -> queries.Statement:
        return queries.trades_page(
            table, page_cursor.snapshot_id, series, window, after, wanted - 1, before
        )

    start_at = page_cursor.window[0]
    if after is not None:
        start_at = max(start_at, datetime_from_micros(after.exchange_ts_us))
    window = (start_at, page_cursor.window[1])
    span = first_span(ctx.reader.summary.symbols.get(series), size + 1)
    result = PiecewiseResult(ctx.reader, piece, window, size + 1, span)
    statement = piece(page_cursor.window, size + 1)
    page = queries.Page(iter(result), size)
    landed = _landed(ctx, table, page_cursor.snapshot_id, series, before)

    def trailer() -> dict[str, Any]:
        nxt = None
        if page.next_key is not None:
            nxt = Cursor(page_cursor.snapshot_id, series, page_cursor.window, page.next_key)
        out: dict[str, Any] = {"next_cursor": nxt.encode() if nxt else None}
        out["snapshot_id"] = str(page_cursor.snapshot_id) if page_cursor.snapshot_id else None
        if landed is not None:
            out["until_landed"] = landed
        return out

    headers = _page_headers(ctx, fmt, statement, size, page_cursor, landed)
    return _respond(fmt, result, iter(page), page.schema(result.schema), trailer, headers)


def _page_cursor(
    ctx: ApiContext,
    table: TableSnapshot,
    series: tuple[str, str],
    cursor: str | None,
    start: str | None,
    end: str | None,
    as_of: str | None,
) -> Cursor:
    """The cursor in force: the given one (it must belong to this query, and its snapshot
    still exist), else a new one at the requested snapshot and window."""
    if cursor is None:
        window = parse_window(
            start,
            end,
            timedelta(hours=1),
            timedelta(hours=ctx.settings.max_range_hours),
            "trades requests",
        )
        snapshot = _snapshot(table, as_of)
        return Cursor(snapshot, series, window, queries.TradeKey(0, 0, ""))
    given = decode_cursor(cursor)
    if given.series != series:
        raise ApiRequestError(400, "cursor belongs to another exchange or symbol")
    if given.snapshot_id is not None and all(s != given.snapshot_id for s, _ in table.history):
        raise ApiRequestError(
            410, "the cursor's snapshot expired; start again from the last trade you received"
        )
    return given


def _after(cursor: str | None, page_cursor: Cursor) -> queries.TradeKey | None:
    return page_cursor.after if cursor is not None else None


def _landed(
    ctx: ApiContext,
    table: TableSnapshot,
    snapshot_id: int | None,
    series: tuple[str, str],
    before: queries.TradeKey | None,
) -> bool | None:
    if before is None:
        return None
    rows = ctx.reader.fetch_all(queries.trade_landed(table, snapshot_id, series, before))
    return bool(rows and rows[0][0])


def _page_headers(
    ctx: ApiContext,
    fmt: Format,
    statement: queries.Statement,
    size: int,
    page_cursor: Cursor,
    landed: bool | None,
) -> dict[str, str]:
    """For formats without a trailer the next cursor goes in ``X-Next-Cursor``, found by
    reading only the order columns of the row after this page."""
    headers = {"X-Snapshot-Id": str(page_cursor.snapshot_id or "")}
    if landed is not None:
        headers["X-Until-Landed"] = str(landed).lower()
    if fmt == "json":
        return headers
    rows = ctx.reader.fetch_all(queries.page_end(statement, size))
    if len(rows) == 2:
        ts, seq, message_id = rows[0]
        key = queries.TradeKey(micros_from_datetime(ts), seq, message_id)
        nxt = Cursor(page_cursor.snapshot_id, page_cursor.series, page_cursor.window, key)
        headers["X-Next-Cursor"] = nxt.encode()
    return headers


@router.get("/trades/latest", summary="The newest trades of one symbol, newest first")
def get_latest(
    request: Request,
    ctx: Ctx,
    exchange: str,
    symbol: str,
    n: Annotated[int, Query(ge=1, description="How many trades.")] = 100,
    as_of: Annotated[str | None, Query(description=_AS_OF)] = None,
    format: Annotated[str | None, Query(description=_FORMAT)] = None,
) -> StreamingResponse:
    fmt = output_format(format, request.headers.get("accept"))
    series = _known_series(ctx, exchange, symbol)
    _limit_check(n, ctx.settings.max_page_size, "n")
    table = _table(ctx, ctx.reader.gold_trades)
    snapshot = _snapshot(table, as_of)
    stat = ctx.reader.summary.symbols[series]
    if as_of is None:  # the newest trade is known: read back from it, a piece at a time
        window = (stat.first_trade, stat.last_trade + timedelta(microseconds=1))
        span = first_span(stat, n)
    else:
        window, span = (datetime_from_micros(0), datetime_from_micros(2**62)), None

    def piece(bounds: tuple[datetime, datetime], wanted: int) -> queries.Statement:
        return queries.latest_trades(table, snapshot, series, bounds, wanted)

    result = PiecewiseResult(ctx.reader, piece, window, n, span, newest_first=True)
    return _respond(fmt, result, iter(result), result.schema)


@router.get("/ohlcv/{interval}", summary="OHLCV bars of one symbol, oldest first")
def get_bars(
    request: Request,
    ctx: Ctx,
    interval: Annotated[str, Path(description=", ".join(BAR_INTERVALS))],
    exchange: str,
    symbol: str,
    start: Annotated[str | None, Query(description=_TIME + " Default: 1,000 bars back.")] = None,
    end: Annotated[str | None, Query(description=_TIME + " Exclusive. Default: now.")] = None,
    as_of: Annotated[str | None, Query(description=_AS_OF)] = None,
    format: Annotated[str | None, Query(description=_FORMAT)] = None,
) -> StreamingResponse:
    """Bars whose start lies in ``[start, end)``; at most ``K2_API__MAX_PAGE_SIZE`` bars."""
    if interval not in BAR_INTERVALS:
        raise ApiRequestError(
            404, f"unknown interval {interval!r}; known: {', '.join(BAR_INTERVALS)}"
        )
    fmt = output_format(format, request.headers.get("accept"))
    series = _known_series(ctx, exchange, symbol)
    step = timedelta(seconds=BAR_INTERVALS[interval])
    most = ctx.settings.max_page_size
    window = parse_window(start, end, step * ctx.settings.default_page_size, step * most, "bars")
    table = _table(ctx, ctx.reader.bars(interval))
    snapshot = _snapshot(table, as_of)
    result = ctx.reader.stream(queries.bars(table, snapshot, series, window, most))
    return _respond(fmt, result, iter(result), result.schema)


@router.get("/coverage", summary="Per symbol and hour: trade count and unfilled gaps")
def get_coverage(
    ctx: Ctx,
    exchange: str | None = None,
    symbol: str | None = None,
    start: Annotated[str | None, Query(description=_TIME + " Default: end - 24 hours.")] = None,
    end: Annotated[str | None, Query(description=_TIME + " Exclusive. Default: now.")] = None,
) -> JSONResponse:
    if exchange is not None and symbol is not None:
        _known_series(ctx, exchange, symbol)
    elif (
        exchange is not None
        and exchange not in ctx.exchanges
        and all(ex != exchange for ex, _ in ctx.reader.summary.symbols)
    ):
        raise ApiRequestError(404, f"unknown exchange {exchange!r}")
    limit = timedelta(hours=ctx.settings.max_coverage_hours)
    window = parse_window(start, end, timedelta(hours=24), limit, "coverage requests")
    rows = coverage(ctx.reader, window, exchange, symbol)
    return JSONResponse({"data": rows, "start": time_text(window[0]), "end": time_text(window[1])})


@router.get("/book", summary="One symbol's order book at an instant, rebuilt from Silver")
def get_book(
    ctx: Ctx,
    exchange: str,
    symbol: Annotated[str, Query(description="Unified symbol, e.g. BTC/USD.")],
    at: Annotated[str | None, Query(description=_TIME + " Default: now.")] = None,
    depth: Annotated[int, Query(ge=1, le=5000, description="Levels a side.")] = 10,
) -> JSONResponse:
    """The book as ``k2 book`` rebuilds it from ``silver.book_changes``: the newest snapshot K2
    received at or before ``at``, then every later message up to it in the order recorded. Each
    level is ``[price, size]`` as exact decimal text, best first; ``verified`` says whether
    every message applied matched the exchange's checksum or sequence."""
    moment = parse_time("at", at) or datetime.now(UTC)
    book = ctx.reader.books(lambda c, table: book_at(c, table, exchange, symbol, moment, depth))
    return JSONResponse(book.document())


@router.get("/bbo", summary="The top of one symbol's book over a time range, at every change")
def get_bbo(
    ctx: Ctx,
    exchange: str,
    symbol: Annotated[str, Query(description="Unified symbol, e.g. BTC/USD.")],
    start: Annotated[str | None, Query(description=_TIME + " Default: end - 1 hour.")] = None,
    end: Annotated[str | None, Query(description=_TIME + " Exclusive. Default: now.")] = None,
    limit: Annotated[int, Query(ge=1, description="Most rows (K2_API__MAX_PAGE_SIZE).")] = 1000,
) -> JSONResponse:
    """Best bid and ask with their sizes, the spread and the mid, rebuilt from
    ``silver.book_changes`` like ``/v1/book``: the first row is the top in effect at ``start``,
    then one row at each instant (K2's receive time) the best bid or ask changed. When more
    rows follow, ``next_start`` is where the next page starts."""
    most = _limit_check(limit, ctx.settings.max_page_size, "limit")
    window = parse_window(start, end, timedelta(hours=1), timedelta(days=1), "bbo requests")
    tops, next_start = ctx.reader.books(
        lambda c, table: top_of_book(c, table, exchange, symbol, window, most)
    )
    return JSONResponse(
        {
            "exchange": exchange,
            "symbol": symbol,
            "data": [top.document() for top in tops],
            "next_start": None if next_start is None else time_text(next_start),
        }
    )
