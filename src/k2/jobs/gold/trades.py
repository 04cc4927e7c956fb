"""``gold.trades``: every exchange's valid trades, exactly one row per ``message_id``.

A micro-batch's valid trades are first made unique by ``message_id`` (a reconnect snapshot or an
overlapping backfill can bring one trade twice in one batch; the copy kept is the one earliest in
Kafka, so a rebuild from Bronze keeps the same one), then anti-joined with the trades Gold already
holds, and only the new ones are appended. The copies of one trade share its ``exchange_ts`` (it
is part of what the exchange sent), so the lookup reads only the minutes the batch's trades fall
in, from a second before the batch's earliest trade in each to a second past its end (for a copy
whose time an exchange's REST history rounds differently): the hour partitions holding them, and
in those only the files whose ``exchange_ts`` bounds overlap.
A duplicate arriving hours or days later is still found (no time window lets it through), and
no batch scans the whole table.

One writer is enough, and is what makes the anti-join exact: only the streaming job (or a rebuild
while it is stopped, which refuses to run beside it) appends to ``gold.trades``, one micro-batch
at a time, so no other insert can land between the lookup and the append. An append never
conflicts with a compaction, and a retried append repeats the lookup, so it is idempotent too;
a replayed micro-batch finds its trades already there and appends nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, Observation
from pyspark.sql import functions as sf

from k2.jobs.commit import with_commit_retries
from k2.jobs.silver.normalise import SILVER, valid
from k2.lake.tables import ensure_table, gold_trades

MINUTE_US = 60_000_000
_EDGE_US = 1_000_000  # a copy whose time an exchange's REST history rounds differently
_ORIGIN = ("kafka_topic", "kafka_partition", "kafka_offset")


@dataclass
class GoldResult:
    """What one batch inserted into ``gold.trades``, per exchange."""

    inserted: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    newest_us: dict[str, int] = field(default_factory=dict)  # newest exchange_ts inserted, µs


def unique_trades(trades: Any) -> Any:
    """One row per ``message_id``: the copy earliest in Kafka (topic, partition, offset)."""
    fields = [c for c in SILVER if c != "message_id"]
    first = sf.min_by(sf.struct(*fields), sf.struct(*_ORIGIN)).alias("first")
    return trades.groupBy("message_id").agg(first).select("message_id", "first.*")


def minutes_of(trades: Any) -> list[tuple[str, str, int, int]]:
    """The (exchange, symbol, minute, earliest ``exchange_ts`` in it) of the valid trades, one
    per minute a symbol's trades fall in, in µs since the epoch.

    Times cross into Python as integers: PySpark would turn a timestamp into a datetime in the
    Python process's own time zone.
    """
    micros = sf.unix_micros("exchange_ts")
    minute = sf.unix_micros(sf.date_trunc("minute", "exchange_ts")).alias("minute")
    rows = (
        valid(trades)
        .groupBy("exchange", "symbol", minute)
        .agg(sf.min(micros).alias("first"))
        .collect()
    )
    return [(row.exchange, row.symbol, int(row.minute), int(row.first)) for row in rows]


def spans(starts: Iterable[int], length_us: int) -> list[tuple[int, int]]:
    """The spans ``[start, start + length_us)`` (µs), adjoining or overlapping ones merged: a
    run of minutes becomes one range."""
    return joined((start, start + length_us) for start in starts)


def joined(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ranges ``[first, end)`` (µs), adjoining or overlapping ones merged."""
    out: list[list[int]] = []
    for first, end in sorted(set(ranges)):
        if out and out[-1][1] >= first:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([first, end])
    return [(first, end) for first, end in out]


def in_ranges(column: str, starts: Iterable[int], length_us: int) -> Column:
    """``column`` (a timestamp) falls in one of :func:`spans` of ``starts``."""
    return in_spans(column, spans(starts, length_us))


def in_spans(column: str, ranges: Iterable[tuple[int, int]]) -> Column:
    """``column`` (a timestamp) falls in one of the ranges ``[first, end)`` (µs)."""
    condition: Column = sf.lit(False)
    for first, end in joined(ranges):
        condition = condition | ((sf.col(column) >= _ts(first)) & (sf.col(column) < _ts(end)))
    return condition


def ranges_sql(column: str, starts: Iterable[int], length_us: int) -> str:
    """:func:`in_ranges` as Spark SQL text (for MERGE conditions)."""
    terms = [
        f"({column} >= timestamp_micros({first}) AND {column} < timestamp_micros({end}))"
        for first, end in spans(starts, length_us)
    ]
    return " OR ".join(terms) or "false"


def _ts(micros: int) -> Column:
    return sf.timestamp_micros(sf.lit(micros))


class GoldTrades:
    """The writer of ``gold.trades`` (the only one: see the module docstring)."""

    def __init__(self, spark: Any, identifier: str, exchanges: Sequence[str]) -> None:
        self._spark = spark
        self.identifier = identifier
        self._exchanges = tuple(exchanges)

    @staticmethod
    def prepare(spark: Any, prefix: str) -> None:
        ensure_table(spark, gold_trades(prefix))

    def insert(self, trades: Any, minutes: Iterable[tuple[int, int]]) -> GoldResult:
        """Insert the valid ones of ``trades`` (unified, with reasons) that Gold lacks;
        ``minutes`` are the minutes (µs) their ``exchange_ts`` fall in, each with the earliest
        of those times in it (:func:`minutes_of`).

        A copy of a trade lies within a second of it, so the lookup reads, in each minute, from
        a second before the batch's earliest trade in it to a second past the minute's end: in
        a live stream, the second before the batch rather than the whole minute already held.
        """
        ranges = [(first - _EDGE_US, minute + MINUTE_US + _EDGE_US) for minute, first in minutes]
        result = GoldResult()
        if not ranges:
            return result
        table = self._spark.table(f"k2.{self.identifier}")
        held = table.where(in_spans("exchange_ts", ranges))
        candidates = valid(trades)
        counts = {e: sf.count_if(sf.col("exchange") == e) for e in self._exchanges}
        newest = {
            e: sf.max(sf.when(sf.col("exchange") == e, sf.unix_micros("exchange_ts")))
            for e in self._exchanges
        }

        def write() -> tuple[dict[str, int], dict[str, int], dict[str, Any]]:
            seen, kept = (
                Observation(f"k2-{uuid.uuid4().hex}"),
                Observation(f"k2-{uuid.uuid4().hex}"),
            )
            observed = candidates.observe(seen, *(c.alias(e) for e, c in counts.items()))
            fresh = unique_trades(observed).join(
                held.select("message_id"), "message_id", "left_anti"
            )
            aggregates = [
                *(c.alias(e) for e, c in counts.items()),
                *(c.alias(f"{e}|newest") for e, c in newest.items()),
            ]
            written = fresh.observe(kept, *aggregates)
            written.select(*SILVER, sf.current_timestamp().alias("gold_written_at")).writeTo(
                f"k2.{self.identifier}"
            ).append()
            return dict(seen.get), {e: kept.get[e] for e in self._exchanges}, dict(kept.get)

        outcome = with_commit_retries(self.identifier, write)
        if outcome is None:
            return result
        seen, kept, extra = outcome
        for exchange in self._exchanges:
            result.inserted[exchange] = int(kept.get(exchange) or 0)
            result.duplicates[exchange] = int(seen.get(exchange) or 0) - result.inserted[exchange]
            moment = extra.get(f"{exchange}|newest")
            if moment is not None:
                result.newest_us[exchange] = int(moment)
        return result
