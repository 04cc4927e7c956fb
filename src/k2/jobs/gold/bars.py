"""OHLCV bars from ``gold.trades``: 1-minute bars after every micro-batch, larger ones rolled up.

A bar is recomputed, never incremented: after a micro-batch's trades are in Gold, every 1-minute
bar that holds one of the batch's trades is computed again from ``gold.trades`` (reading only
the minutes concerned), compared with the bar already stored, and written only when it is new
or its values changed. So a late trade (backfilled, or delivered after its bar was written)
revises its bar, a replayed micro-batch finds every bar unchanged and writes nothing, and a bar
exists only for an interval that had trades.

Open and close are the first and last trades of the bar by ``exchange_ts``, then trade id
(numerically where the id is a number), then ``message_id``: never by arrival order.
``quote_volume`` is the exact sum of the trades' exact ``price × quantity``; ``vwap`` is
``quote_volume / volume`` rounded half-even to 18 decimals, computed on the driver in Python's
decimal for the few bars that changed (Spark cannot divide two decimal(38,18) values without
losing digits).

The larger bars (5m ... 1d) are rolled up from the 1-minute bars every
``GoldSettings.rollup_interval_s`` (and when the job stops): a 1-minute bar revised since a
larger table's last rollup marks the larger bar that contains it for recomputation from its
1-minute bars. Each table remembers how far it is rolled up by the newest ``updated_at`` of its
own bars, so a restarted job picks up where the last one left off.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

import pyarrow as pa
import structlog
from pyspark.sql import Column
from pyspark.sql import functions as sf

from k2.domain import BAR_INTERVALS
from k2.jobs.commit import with_commit_retries
from k2.jobs.gold.trades import in_ranges, ranges_sql
from k2.lake.tables import ensure_table, gold_bars

log = structlog.get_logger(__name__)

KEYS = ("exchange", "symbol", "bar_start")
BAR_COLUMNS = tuple(gold_bars("1m").column_names())
# What a bar is made of; bar_end follows from bar_start and vwap from the volumes.
_AGGREGATES = tuple(c for c in BAR_COLUMNS if c not in (*KEYS, "bar_end", "vwap", "updated_at"))
_MINUTE = "1m"
_DIVISION = Context(prec=120)
_EIGHTEEN = Decimal(1).scaleb(-18)
_NUMERIC_ID = "^[0-9]{1,38}\\z"


def exact_vwap(quote_volume: Decimal | None, volume: Decimal | None) -> Decimal | None:
    """``quote_volume / volume`` rounded half-even to 18 decimals (None without volume)."""
    if quote_volume is None or volume is None or volume == 0:
        return None
    return _DIVISION.divide(quote_volume, volume).quantize(_EIGHTEEN, rounding=ROUND_HALF_EVEN)


def _start(column: str, seconds: int) -> Column:
    """The start of the ``seconds``-long bar holding ``column`` (UTC)."""
    micros = sf.unix_micros(sf.col(column))
    return sf.timestamp_micros(micros - sf.pmod(micros, sf.lit(seconds * 1_000_000)))


def bars_from_trades(trades: Any, seconds: int) -> Any:
    """``seconds``-long bars of Gold rows ``trades`` (keys and aggregates; see :func:`_store`
    for the end, VWAP and write time)."""
    trade_number = sf.when(
        sf.col("trade_id").rlike(_NUMERIC_ID), sf.col("trade_id").cast("decimal(38,0)")
    )
    order = sf.struct("exchange_ts", trade_number.alias("n"), "trade_id", "message_id")
    zero = sf.lit(0).cast("decimal(38,18)")
    bars = (
        trades.withColumn("bar_start", _start("exchange_ts", seconds))
        .groupBy(*KEYS)
        .agg(
            sf.min_by("price", order).alias("open"),
            sf.max("price").alias("high"),
            sf.min("price").alias("low"),
            sf.max_by("price", order).alias("close"),
            sf.sum("quantity").alias("volume"),
            sf.sum("quote_quantity").alias("quote_volume"),
            sf.count(sf.lit(1)).alias("trade_count"),
            sf.coalesce(sf.sum(sf.when(sf.col("side") == "buy", sf.col("quantity"))), zero).alias(
                "buy_volume"
            ),
            sf.coalesce(sf.sum(sf.when(sf.col("side") == "sell", sf.col("quantity"))), zero).alias(
                "sell_volume"
            ),
            sf.min_by("trade_id", order).alias("first_trade_id"),
            sf.max_by("trade_id", order).alias("last_trade_id"),
        )
    )
    return bars


def bars_from_bars(bars: Any, seconds: int) -> Any:
    """``seconds``-long bars rolled up from smaller ``bars`` (each inside one larger bar)."""
    larger = (
        bars.withColumnRenamed("bar_start", "part_start")
        .withColumn("bar_start", _start("part_start", seconds))
        .groupBy(*KEYS)
        .agg(
            sf.min_by("open", "part_start").alias("open"),
            sf.max("high").alias("high"),
            sf.min("low").alias("low"),
            sf.max_by("close", "part_start").alias("close"),
            sf.sum("volume").alias("volume"),
            sf.sum("quote_volume").alias("quote_volume"),
            sf.sum("trade_count").alias("trade_count"),
            sf.sum("buy_volume").alias("buy_volume"),
            sf.sum("sell_volume").alias("sell_volume"),
            sf.min_by("first_trade_id", "part_start").alias("first_trade_id"),
            sf.max_by("last_trade_id", "part_start").alias("last_trade_id"),
        )
    )
    return larger


@dataclass(frozen=True)
class BarChanges:
    """Bars one update inserted and revised, for one interval."""

    interval: str
    new: int = 0
    revised: int = 0


Key = tuple[str, str, int]  # exchange, symbol, bar start in µs


class BarTables:
    """The writer of every ``gold.ohlcv_<interval>`` table (the streaming job, or a rebuild
    while it is stopped)."""

    def __init__(self, spark: Any, gold: str, tables: dict[str, str]) -> None:
        self._spark = spark
        self._gold = gold
        self.tables = tables
        self._rolled_up_us: dict[str, int] = {}  # interval -> newest 1m updated_at rolled up

    @staticmethod
    def prepare(spark: Any, prefix: str) -> None:
        for interval in BAR_INTERVALS:
            ensure_table(spark, gold_bars(interval, prefix))

    def update_minutes(self, minutes: Iterable[Key]) -> BarChanges:
        """Recompute the 1-minute bars ``minutes`` from ``gold.trades`` and store what changed."""
        keys = sorted(set(minutes))
        if not keys:
            return BarChanges(_MINUTE)
        seconds = BAR_INTERVALS[_MINUTE]
        span = seconds * 1_000_000
        trades = self._spark.table(f"k2.{self._gold}").where(
            in_ranges("exchange_ts", (k[2] for k in keys), span)
        )
        wanted = self._keys_frame(keys)
        located = trades.withColumn("bar_start", _start("exchange_ts", seconds))
        chosen = located.join(sf.broadcast(wanted), list(KEYS), "left_semi").drop("bar_start")
        return self.store(_MINUTE, bars_from_trades(chosen, seconds), keys, span)

    def rollup(self) -> list[BarChanges]:
        """Bring every larger interval up to date with the 1-minute bars revised since its last
        rollup."""
        minute_table = self._spark.table(f"k2.{self.tables[_MINUTE]}")
        larger = [i for i in BAR_INTERVALS if i != _MINUTE]
        for interval in larger:
            if interval not in self._rolled_up_us:
                self._rolled_up_us[interval] = self._newest_update(interval)
        since = min(self._rolled_up_us[i] for i in larger)
        updated = sf.unix_micros("updated_at")
        rows = (
            minute_table.where(updated > since)
            .select(
                "exchange",
                "symbol",
                sf.unix_micros("bar_start").alias("start"),
                updated.alias("at"),
            )
            .collect()
        )
        changes = []
        for interval in larger:
            mark = self._rolled_up_us[interval]
            fresh = [r for r in rows if r.at > mark]
            if not fresh:
                changes.append(BarChanges(interval))
                continue
            span = BAR_INTERVALS[interval] * 1_000_000
            keys = sorted({(r.exchange, r.symbol, r.start - r.start % span) for r in fresh})
            parts = minute_table.where(in_ranges("bar_start", (k[2] for k in keys), span))
            located = parts.withColumn("bucket", _start("bar_start", BAR_INTERVALS[interval]))
            wanted = self._keys_frame(keys).withColumnRenamed("bar_start", "bucket")
            chosen = located.join(
                sf.broadcast(wanted), ["exchange", "symbol", "bucket"], "left_semi"
            ).drop("bucket")
            changes.append(
                self.store(interval, bars_from_bars(chosen, BAR_INTERVALS[interval]), keys, span)
            )
            self._rolled_up_us[interval] = max(r.at for r in fresh)
        return changes

    def _newest_update(self, interval: str) -> int:
        row = (
            self._spark.table(f"k2.{self.tables[interval]}")
            .select(sf.max(sf.unix_micros("updated_at")).alias("at"))
            .collect()[0]
        )
        return int(row.at) if row.at is not None else -1

    def _keys_frame(self, keys: Sequence[Key]) -> Any:
        columns = {"exchange": "string", "symbol": "string", "start": "bigint"}
        frame = _local_frame(self._spark, columns, list(keys))
        return frame.select("exchange", "symbol", sf.timestamp_micros("start").alias("bar_start"))

    def store(self, interval: str, bars: Any, keys: Sequence[Key], span: int) -> BarChanges:
        """Write the bars of ``bars`` that are new or differ from the stored ones: one MERGE,
        only when something changed.

        The changed bars are few (those of the minutes a batch touched), so they come to the
        driver, where each gets its exact VWAP, and go back as the MERGE's source.
        """
        identifier = self.tables[interval]
        stored = self._spark.table(f"k2.{identifier}").where(
            in_ranges("bar_start", (k[2] for k in keys), span)
        )
        changed = _changed(bars, stored).collect()
        if not changed:
            return BarChanges(interval)
        source = (
            _local_frame(self._spark, _CHANGED_COLUMNS, [_with_vwap(row) for row in changed])
            .select(
                "exchange",
                "symbol",
                sf.timestamp_micros("start_us").alias("bar_start"),
                sf.timestamp_micros(sf.col("start_us") + span).alias("bar_end"),
                *(c for c in BAR_COLUMNS if c in _AGGREGATES or c == "vwap"),
                sf.current_timestamp().alias("updated_at"),
            )
            .select(*BAR_COLUMNS)
        )
        view = f"k2_bars_{uuid.uuid4().hex}"
        source.createOrReplaceTempView(view)
        try:
            keys_match = " AND ".join(f"t.{key} = s.{key}" for key in KEYS)
            in_span = ranges_sql("t.bar_start", (k[2] for k in keys), span)
            statement = (
                f"MERGE INTO k2.{identifier} t USING {view} s ON {keys_match} AND ({in_span}) "
                "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
            )
            with_commit_retries(identifier, lambda: self._spark.sql(statement))
        finally:
            self._spark.catalog.dropTempView(view)
        new = sum(1 for row in changed if row.change == "new")
        return BarChanges(interval, new, len(changed) - new)


_TYPES = {column.name: column.sql_type for column in gold_bars(_MINUTE).columns}
_CHANGED_COLUMNS = {
    "exchange": "string",
    "symbol": "string",
    "start_us": "bigint",
    **{name: _TYPES[name] for name in (*_AGGREGATES, "vwap")},
}
_ARROW_TYPES = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "decimal(38,18)": pa.decimal128(38, 18),
}


def _local_frame(spark: Any, columns: dict[str, str], rows: Sequence[Sequence[Any]]) -> Any:
    """A DataFrame of driver-side ``rows``, handed to Spark as Arrow (exact decimals), so no
    Python worker process is started to read them."""
    names = list(columns)
    schema = pa.schema([(name, _ARROW_TYPES[columns[name]]) for name in names])
    table = pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in rows], schema)
    return spark.createDataFrame(table)


def _with_vwap(row: Any) -> tuple[Any, ...]:
    values = [getattr(row, c) for c in _AGGREGATES]
    return (
        row.exchange,
        row.symbol,
        row.start_us,
        *values,
        exact_vwap(row.quote_volume, row.volume),
    )


def _changed(bars: Any, stored: Any) -> Any:
    """``bars`` not stored yet (``change`` new) or whose aggregates differ (revised), with their
    start as µs (times cross into Python as integers: PySpark would shift a timestamp into the
    Python process's own time zone)."""
    old = stored.select(*KEYS, *(sf.col(c).alias(f"old_{c}") for c in _AGGREGATES))
    joined = bars.join(old, list(KEYS), "left")
    same = sf.lit(True)
    for name in _AGGREGATES:
        same = same & sf.col(name).eqNullSafe(sf.col(f"old_{name}"))
    change = sf.when(sf.col("old_open").isNull(), sf.lit("new")).when(~same, sf.lit("revised"))
    return (
        joined.withColumn("change", change)
        .where(sf.col("change").isNotNull())
        .select(
            "exchange",
            "symbol",
            sf.unix_micros("bar_start").alias("start_us"),
            *_AGGREGATES,
            "change",
        )
    )
