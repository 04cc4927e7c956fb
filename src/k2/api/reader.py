"""The API's view of the lake: table snapshots kept current in the background, reused DuckDB
connections, and a per-symbol summary recomputed only when ``gold.trades`` changes.

A request never asks the catalog anything: a thread checks the catalog every
``refresh_interval_s`` (one query for every table's metadata location) and reloads a table only
when its location changed. Requests take one of ``duckdb_connections`` reused connections, run
one parameterised statement and stream the result batch by batch, holding the connection until
the stream is consumed or closed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pyarrow as pa
import structlog

from k2.api.queries import Statement, symbol_summary
from k2.config import ApiSettings, LakeAccess
from k2.errors import ApiRequestError, K2Error, QueryError
from k2.lake.query import LakeViews, TableSnapshot, quoted_name
from k2.lake.tables import bars_table, gaps_table, gold_trades, silver_book_changes

T = TypeVar("T")
log = structlog.get_logger(__name__)

BATCH_ROWS = 8192
RECENT_S = 60
_SUMMARY_EVERY = 5
_ACQUIRE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SymbolStat:
    """One (exchange, symbol) of ``gold.trades``."""

    exchange: str
    symbol: str
    first_trade: datetime
    last_trade: datetime
    trade_count: int
    recent_trades: int  # trades in the RECENT_S seconds before the summary was made


@dataclass(frozen=True)
class Summary:
    snapshot_id: int | None
    made_at: datetime
    symbols: dict[tuple[str, str], SymbolStat]


class ResultStream:
    """A statement's result: its schema now, its batches on iteration; the connection goes back
    to the pool when the batches are consumed or :meth:`close` is called."""

    def __init__(self, reader: LakeReader, connection: Any, result: Any) -> None:
        self._reader, self._connection = reader, connection
        self._batches = result.to_arrow_reader(BATCH_ROWS)
        self.schema: pa.Schema = self._batches.schema

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._batches
        finally:
            self.close()

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            self._reader.release(connection)


class LakeReader:
    """Snapshots, connections and the symbol summary for one API process."""

    def __init__(self, api: ApiSettings, lake: LakeAccess) -> None:
        self._api = api
        self._prefix = lake.settings.namespace_prefix
        self.gold_trades = gold_trades(self._prefix).identifier
        self.gold_gaps = gaps_table(self._prefix)
        self.book_changes = silver_book_changes(self._prefix).identifier
        self.views = LakeViews(lake, threads=api.duckdb_threads)
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._created = 0
        self._pool_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.summary = Summary(None, datetime.now(UTC), {})
        self._summary_at = 0.0
        self.refresh_error: str | None = None
        self.refreshed_at: float | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> LakeReader:
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="lake-refresh", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self._api.refresh_interval_s):
            self.refresh()

    def refresh(self) -> None:
        """Follow new commits; a failure is kept for ``/healthz`` and logged once per cause."""
        try:
            self.views.refresh()
            self._update_summary()
        except K2Error as exc:
            if str(exc) != self.refresh_error:
                log.warning("lake_refresh_failed", error=str(exc))
            self.refresh_error = str(exc)
            return
        if self.refresh_error is not None:
            log.info("lake_refresh_recovered")
        self.refresh_error = None
        self.refreshed_at = time.monotonic()

    def _update_summary(self) -> None:
        """Recompute the summary when gold.trades has a new snapshot, at most once per
        ``_SUMMARY_EVERY`` refreshes (it scans the table) unless it is still empty."""
        table = self.table(self.gold_trades)
        if table is None or table.snapshot_id == self.summary.snapshot_id:
            return
        every_s = _SUMMARY_EVERY * self._api.refresh_interval_s
        if self.summary.symbols and time.monotonic() - self._summary_at < every_s:
            return
        made_at = datetime.now(UTC)
        statement = symbol_summary(table, made_at - timedelta(seconds=RECENT_S))
        rows = self.fetch_all(statement)
        stats = {(r[0], r[1]): SymbolStat(*r) for r in rows}
        self.summary = Summary(table.snapshot_id, made_at, stats)
        self._summary_at = time.monotonic()

    # -------------------------------------------------------------- snapshots

    def bars(self, interval: str) -> str:
        """The identifier of the bars of ``interval`` in this lake."""
        return bars_table(interval, self._prefix)

    def table(self, identifier: str) -> TableSnapshot | None:
        """The table as of the last refresh, or None when it does not exist (yet)."""
        return self.views.tables.get(identifier)

    def newest_commit_ms(self) -> int | None:
        times = [t.committed_ms for t in self.views.tables.values() if t.committed_ms]
        return max(times) if times else None

    # ------------------------------------------------------------ connections

    def acquire(self) -> Any:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        with self._pool_lock:
            if self._created < self._api.duckdb_connections:
                self._created += 1
                return self.views.cursor()
        try:
            return self._pool.get(timeout=_ACQUIRE_TIMEOUT_S)
        except queue.Empty:
            raise QueryError("every DuckDB connection is busy; retry shortly") from None

    def release(self, connection: Any) -> None:
        self._pool.put(connection)

    def books(self, replay: Callable[[Any, str], T]) -> T:
        """``replay`` (a :mod:`k2.lake.books` reader, given a pooled connection and the quoted
        name of ``silver.book_changes``) run and its answer returned; a request error (404) when
        no order books are stored, a setting rather than an outage, or when the replay finds
        nothing."""
        if self.table(self.book_changes) is None:
            raise ApiRequestError(
                404,
                f"{self.book_changes} does not exist: no order books are stored "
                "(K2_INGEST__<EXCHANGE>__BOOKS=true captures them)",
            )
        connection = self.acquire()
        try:
            return replay(connection, quoted_name(self.book_changes))
        except QueryError as exc:
            raise ApiRequestError(404, str(exc)) from exc
        finally:
            self.release(connection)

    def stream(self, statement: Statement) -> ResultStream:
        """Run ``statement``; its result as a :class:`ResultStream`."""
        import duckdb

        connection = self.acquire()
        try:
            result = connection.execute(statement.sql, statement.params)
            return ResultStream(self, connection, result)
        except duckdb.Error as exc:
            self.release(connection)
            raise QueryError(" ".join(str(exc).split())) from exc

    def fetch_all(self, statement: Statement) -> list[tuple[Any, ...]]:
        """Run ``statement`` and return its rows (for small results)."""
        import duckdb

        connection = self.acquire()
        try:
            rows: list[tuple[Any, ...]] = connection.execute(
                statement.sql, statement.params
            ).fetchall()
            return rows
        except duckdb.Error as exc:
            raise QueryError(" ".join(str(exc).split())) from exc
        finally:
            self.release(connection)

    def healthy(self) -> tuple[bool, str]:
        """Catalog readable at the last refresh and DuckDB answering."""
        if self.refresh_error is not None:
            return False, f"catalog: {self.refresh_error}"
        try:
            self.fetch_all(Statement("SELECT 1", []))
        except QueryError as exc:
            return False, f"duckdb: {exc}"
        return True, "ok"
