"""``k2 job rebuild``: Silver, Gold or the bars recomputed from the layer below, in batch.

Rebuilding uses the streaming job's own transformations, so it gives the same rows:

- **silver**: Bronze's rows of each exchange through the same normalisation and validation
  (:func:`k2.jobs.silver.normalise.unified`); valid trades replace Silver's, invalid ones the
  exchange's rows in the quarantine;
- **gold**: Silver's trades made unique by ``message_id`` the way the stream does (the copy
  earliest in Kafka, :func:`k2.jobs.gold.trades.unique_trades`) replace Gold's;
- **bars**: every interval's bars computed again from ``gold.trades``.

``--from``/``--to`` bound the rebuild by ``exchange_ts`` (the bars: every bar that overlaps the
range, whole); without them the layer is rebuilt whole. Each table is replaced in two commits
(the old rows deleted, the new appended): a rebuild that is interrupted leaves that range short,
and running it again completes it. The streaming job must not run meanwhile (one writer per
table is what makes its appends exact), so the rebuild refuses to start while it holds its lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from pyspark.sql import functions as sf

from k2.config import LakeAccess, Settings, SilverSettings
from k2.domain import BAR_INTERVALS
from k2.errors import LeaseLostError
from k2.jobs.gold.bars import KEYS, BarTables, bars_from_trades
from k2.jobs.gold.trades import unique_trades
from k2.jobs.layout import Layout, layout
from k2.jobs.lock import writer_lock
from k2.jobs.offsets import (
    MARKER,
    PREVIOUS,
    Positions,
    marker_offsets,
    marker_value,
    merged,
    restricted,
)
from k2.jobs.silver.normalise import SILVER, invalid, unified, valid
from k2.jobs.silver.step import QUARANTINE_COLUMNS
from k2.jobs.stream import prepare_tables
from k2.lake.catalog import open_catalog

log = structlog.get_logger(__name__)

Layer = Literal["silver", "gold", "bars"]
LAYERS: tuple[Layer, ...] = ("silver", "gold", "bars")


@dataclass
class RebuildReport:
    """Rows each table holds for the rebuilt range afterwards."""

    layer: str
    rows: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Window:
    """``[start_us, end_us)`` on ``exchange_ts``; both None: everything."""

    start_us: int | None = None
    end_us: int | None = None

    @property
    def whole(self) -> bool:
        return self.start_us is None and self.end_us is None

    def on(self, column: str) -> str:
        """SQL: ``column`` (a timestamp) is in the window."""
        terms = ["true"]
        if self.start_us is not None:
            terms.append(f"{column} >= timestamp_micros({self.start_us})")
        if self.end_us is not None:
            terms.append(f"{column} < timestamp_micros({self.end_us})")
        return "(" + " AND ".join(terms) + ")"

    def widened(self, before_s: float, after_s: float) -> Window:
        """The window grown by ``before_s`` at its start and ``after_s`` at its end."""
        return Window(
            None if self.start_us is None else self.start_us - round(before_s * 1e6),
            None if self.end_us is None else self.end_us + round(after_s * 1e6),
        )

    def covering(self, span: int) -> Window:
        """The window grown to whole ``span``-µs bars."""
        return Window(
            None if self.start_us is None else self.start_us - self.start_us % span,
            None if self.end_us is None else -(-self.end_us // span) * span,
        )


def rebuild(
    spark: Any,
    settings: Settings,
    layer: Layer,
    exchanges: Sequence[str] | None = None,
    window: Window | None = None,
    on_step: Callable[[str], None] | None = None,
) -> RebuildReport:
    """Rebuild ``layer`` for ``exchanges`` (default: every configured one) in ``window``."""
    plan = layout(settings)
    chosen = tuple(exchanges or plan.exchanges)
    span = window or Window()
    lost: list[LeaseLostError] = []

    def step(name: str) -> None:
        if lost:  # another writer took the tables over: stop before the next step
            raise lost[0]
        if on_step is not None:
            on_step(name)

    lake = settings.lake_access()
    home, lease_s = settings.stack.state_dir, settings.stream.writer_lease_s
    with writer_lock(lake, home, lease_s, plan, f"k2 job rebuild {layer}", lost.append):
        prepare_tables(spark, lake, settings.registry_config(), plan)
        rebuilder = _Rebuilder(spark, lake, settings.silver, plan, chosen, span, step)
        report = {"silver": rebuilder.silver, "gold": rebuilder.gold, "bars": rebuilder.bars}[
            layer
        ]()
    log.info("layer_rebuilt", layer=layer, exchanges=list(chosen), rows=report.rows)
    return report


def steps_of(layer: Layer, exchanges: Sequence[str]) -> int:
    """How many ``on_step`` calls a rebuild of ``layer`` makes (for a progress bar)."""
    if layer == "silver":
        return len(exchanges)
    if layer == "gold":
        return 1
    return len(BAR_INTERVALS)


class _Rebuilder:
    def __init__(
        self,
        spark: Any,
        lake: LakeAccess,
        silver: SilverSettings,
        plan: Layout,
        exchanges: Sequence[str],
        window: Window,
        on_step: Callable[[str], None],
    ) -> None:
        self._spark = spark
        self._skew = silver
        self._plan = plan
        self._exchanges = exchanges
        self._window = window
        self._on_step = on_step
        self._catalog = open_catalog(lake)
        self._mine = "exchange IN (" + ", ".join(f"'{e}'" for e in exchanges) + ")"

    def silver(self) -> RebuildReport:
        report = RebuildReport("silver")
        skew = self._skew
        received = self._window.widened(skew.max_future_skew_s, skew.max_past_skew_s)
        in_window = self._window.on("exchange_ts")
        for exchange in self._exchanges:
            source = self._plan.source(exchange)
            bronze = self._spark.table(f"k2.{source.table}").where(received.on("received_us"))
            trades = unified(bronze.drop("bronze_written_at"), exchange, skew).persist()
            try:
                table = self._plan.silver[exchange]
                self._delete(table, in_window)
                self._append(
                    valid(trades).where(in_window),
                    table,
                    [*SILVER, sf.current_timestamp().alias("silver_written_at")],
                    self._marker(table, source),
                )
                quarantined = (
                    f"exchange = '{exchange}' AND ({in_window} OR "
                    f"(exchange_ts IS NULL AND {self._window.on('received_ts')}))"
                )
                self._delete(self._plan.quarantine, quarantined)
                self._append(
                    invalid(trades).where(quarantined),
                    self._plan.quarantine,
                    [*QUARANTINE_COLUMNS, sf.current_timestamp().alias("quarantined_at")],
                    self._marker(self._plan.quarantine, source),
                )
                report.rows[table] = self._count(table, in_window)
            finally:
                trades.unpersist()
            self._on_step(f"silver.{exchange}")
        return report

    def gold(self) -> RebuildReport:
        condition = f"{self._window.on('exchange_ts')} AND {self._mine}"
        silver = None
        for exchange in self._exchanges:
            frame = self._spark.table(f"k2.{self._plan.silver[exchange]}").select(*SILVER)
            silver = frame if silver is None else silver.unionByName(frame)
        self._delete(self._plan.gold, condition)
        assert silver is not None
        self._append(
            unique_trades(silver.where(condition)),
            self._plan.gold,
            [*SILVER, sf.current_timestamp().alias("gold_written_at")],
            None,
        )
        self._on_step("gold.trades")
        return RebuildReport("gold", {self._plan.gold: self._count(self._plan.gold, condition)})

    def bars(self) -> RebuildReport:
        report = RebuildReport("bars")
        tables = BarTables(self._spark, self._plan.gold, dict(self._plan.bars))
        for interval, seconds in BAR_INTERVALS.items():
            span = seconds * 1_000_000
            whole = self._window.covering(span)
            identifier = self._plan.bars[interval]
            self._delete(identifier, f"{whole.on('bar_start')} AND {self._mine}")
            trades = self._spark.table(f"k2.{self._plan.gold}").where(
                f"{whole.on('exchange_ts')} AND {self._mine}"
            )
            bars = bars_from_trades(trades, seconds).persist()
            try:
                starts = bars.select(*KEYS[:2], sf.unix_micros("bar_start").alias("start"))
                keys = [(r.exchange, r.symbol, int(r.start)) for r in starts.collect()]
                tables.store(interval, bars, keys, span)
            finally:
                bars.unpersist()
            report.rows[identifier] = self._count(
                identifier, f"{whole.on('bar_start')} AND {self._mine}"
            )
            self._on_step(identifier)
        return report

    def _marker(self, identifier: str, source: Any) -> Positions:
        """The marker a rebuilt table keeps: its own, advanced to Bronze's position for the
        exchange when the whole exchange was rebuilt from Bronze (its rows are then all there)."""
        own = marker_offsets(self._catalog.load_table(identifier))
        settled = own.settled if own else {}
        if self._window.whole:
            bronze = marker_offsets(self._catalog.load_table(source.table))
            if bronze is not None:
                settled = merged(settled, restricted(bronze.settled, [source.topic]))
        return settled

    def _delete(self, identifier: str, condition: str) -> None:
        if self._spark.table(f"k2.{identifier}").where(condition).limit(1).count() == 0:
            return
        statement = f"DELETE FROM k2.{identifier} WHERE true AND ({condition})"  # noqa: S608 - built here from validated exchange names and integer times
        self._spark.sql(statement)

    def _append(
        self, frame: Any, identifier: str, columns: Sequence[Any], settled: Positions | None
    ) -> None:
        """Append with the table's marker as given (rows a rebuild writes move no position)."""
        writer = frame.select(*columns).writeTo(f"k2.{identifier}")
        if settled is not None:
            for key in (MARKER, PREVIOUS):
                writer = writer.option(f"snapshot-property.{key}", marker_value(settled))
        writer.append()

    def _count(self, identifier: str, condition: str) -> int:
        return int(self._spark.table(f"k2.{identifier}").where(condition).count())
