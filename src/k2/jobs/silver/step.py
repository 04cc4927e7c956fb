"""Silver for one micro-batch: each exchange's valid trades to its table, the levels of the book
records to ``silver.book_changes``, the rest to quarantine.

The decoded records Bronze cached become unified trades with their validation reasons
(:func:`k2.jobs.silver.normalise.unified`), once, cached for Gold and the bars. Each exchange's
valid trades are appended to ``silver.<exchange>_trades`` and every invalid one, with all its
reason codes and its raw fields, to ``silver.quarantine``: nothing is dropped without a row
somewhere. Both appends are exactly once per Kafka offset (:class:`k2.jobs.commit.MarkedTable`);
an observation on the Silver appends says whether the quarantine has anything new to take, so
it costs nothing in a batch without invalid trades. The book records of every exchange whose
books are captured become one row per level (:func:`k2.jobs.silver.books.book_changes`), appended
to the one ``silver.book_changes`` table the same way, exactly once per Kafka offset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from pyspark.sql import functions as sf

from k2.config import SilverSettings
from k2.jobs.bronze.step import BronzeResult
from k2.jobs.commit import MarkedTable
from k2.jobs.kept import kept
from k2.jobs.layout import BOOKS, Layout
from k2.jobs.offsets import Positions
from k2.jobs.silver.books import BOOK_CHANGES, BOOK_REASONS, book_changes
from k2.jobs.silver.normalise import REASONS, SILVER, unified
from k2.lake.tables import ensure_table, silver_book_changes, silver_quarantine, silver_trades

QUARANTINE_COLUMNS = (
    "exchange",
    "protocol",
    "reasons",
    "raw",
    "message_id",
    "exchange_symbol",
    "exchange_ts",
    "received_ts",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)


@dataclass
class SilverResult:
    """What one batch wrote to Silver, and its unified trades (cached) for Gold and the bars."""

    written: dict[str, int] = field(default_factory=dict)  # exchange -> valid trades appended
    quarantined: Counter[tuple[str, str]] = field(default_factory=Counter)  # (exchange, reason)
    trades: Any = None  # unified trades of every exchange with their reasons; None: no trades
    books: Any = None  # the book records' levels with their reasons; None: no book records
    book_changes: int = 0  # valid levels appended to silver.book_changes


class SilverStep:
    """Silver of every exchange of a layout; one instance per query run."""

    def __init__(
        self,
        catalog: Any,
        layout: Layout,
        settled: Mapping[str, Positions],
        settings: SilverSettings,
        write_tasks: int,
    ) -> None:
        self._layout = layout
        self._settings = settings
        self._write_tasks = write_tasks
        self.tables = {
            exchange: MarkedTable(
                catalog, table, [layout.source(exchange).topic], settled.get(table, {})
            )
            for exchange, table in layout.silver.items()
        }
        self.books = None
        if layout.book_changes is not None:
            self.books = MarkedTable(
                catalog,
                layout.book_changes,
                layout.book_topics(),
                settled.get(layout.book_changes, {}),
            )
        quarantine = layout.quarantine
        self.quarantine = MarkedTable(
            catalog,
            quarantine,
            [*layout.trade_topics(), *layout.book_topics()],
            settled.get(quarantine, {}),
        )

    @staticmethod
    def prepare(spark: Any, layout: Layout) -> None:
        """Create the Silver tables and the quarantine if missing."""
        for exchange in layout.silver:
            ensure_table(spark, silver_trades(exchange, layout.prefix))
        if layout.book_changes is not None:
            ensure_table(spark, silver_book_changes(layout.prefix))
        ensure_table(spark, silver_quarantine(layout.prefix))

    def normalise(self, bronze: Sequence[BronzeResult]) -> SilverResult:
        """The decoded trades of ``bronze`` normalised and validated, cached; nothing is written
        yet (:meth:`write` appends them)."""
        result = SilverResult()
        frames = [
            unified(item.records, item.source.name, self._settings)
            for item in bronze
            if item.source.is_trades and item.records is not None
        ]
        if frames:
            trades = reduce(lambda a, b: a.unionByName(b), frames)
            result.trades = kept(trades)
        levels = [
            book_changes(item.records, item.source.exchange)
            for item in bronze
            if item.source.kind == BOOKS and item.records is not None and item.source.exchange
        ]
        if levels:
            books = reduce(lambda a, b: a.unionByName(b), levels)
            result.books = kept(books)
        return result

    def write(
        self, result: SilverResult, bronze: Sequence[BronzeResult], batch_last: Positions
    ) -> None:
        """Append each exchange's valid trades and the book levels of :meth:`normalise`, then
        the quarantine's."""
        pending = 0
        for item in bronze:
            if result.trades is not None and item.source.is_trades and item.records is not None:
                mine = result.trades.where(sf.col("exchange") == item.source.name)
                table = self.tables[item.source.name]
                written, invalid = self._append_valid(table, mine, SILVER, batch_last)
                result.written[item.source.name] = written
                pending += invalid
        if result.books is not None and self.books is not None:
            result.book_changes, invalid = self._append_valid(
                self.books, result.books, BOOK_CHANGES, batch_last
            )
            pending += invalid
        if pending:
            result.quarantined = self._append_invalid(result, batch_last)

    def _append_valid(
        self, table: MarkedTable, rows: Any, columns: Sequence[str], batch_last: Positions
    ) -> tuple[int, int]:
        """Append the new valid ``rows`` to ``table``; (written, invalid rows new to
        quarantine)."""
        invalid_new = (sf.size("reasons") > 0) & self.quarantine.fresh()
        if not table.moves(batch_last):  # a replay: Silver has it; quarantine may not
            return 0, int(rows.where(invalid_new).count())
        counts = table.append(
            rows,
            batch_last,
            keep=sf.size("reasons") == 0,
            counts={"invalid": sf.count_if(invalid_new)},
            columns=[*columns, sf.current_timestamp().alias("silver_written_at")],
            files=self._write_tasks,
        )
        if counts is None:  # landed although its commit reported a failure
            return 0, int(rows.where(invalid_new).count())
        return counts["rows"], counts["invalid"]

    def _append_invalid(
        self, result: SilverResult, batch_last: Positions
    ) -> Counter[tuple[str, str]]:
        """Append the batch's new invalid trades and book levels; their number per exchange
        and reason."""
        exchanges = list(self._layout.silver)
        reasons = dict.fromkeys((*REASONS, *BOOK_REASONS))
        counts = {
            f"{exchange}|{reason}": sf.count_if(
                (sf.col("exchange") == exchange) & sf.array_contains("reasons", reason)
            )
            for exchange in exchanges
            for reason in reasons
        }
        invalid = [
            frame.where(sf.size("reasons") > 0).select(*QUARANTINE_COLUMNS)
            for frame in (result.trades, result.books)
            if frame is not None
        ]
        observed = self.quarantine.append(
            reduce(lambda a, b: a.unionByName(b), invalid),
            batch_last,
            counts=counts,
            columns=[*QUARANTINE_COLUMNS, sf.current_timestamp().alias("quarantined_at")],
            files=1,
        )
        found: Counter[tuple[str, str]] = Counter()
        for key, value in (observed or {}).items():
            if "|" in key and value:
                exchange, reason = key.split("|", 1)
                found[(exchange, reason)] = value
        return found
