"""Where the data stands: per symbol, per raw topic, per table, and the bad records kept aside.

Each reader is bounded in time and reads only metadata where it can: Kafka watermarks, Iceberg
snapshot summaries and file statistics, and one pruned scan per table for the rows of the last
minute. A source that cannot be read (Kafka down, no catalog yet) is reported, not raised, so
``k2 status`` always shows what it can.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.serialization import MessageField, SerializationContext

from k2.jobs.offsets import marker_offsets
from k2.lake.tables import bronze_tables
from k2.stack.scrape import Scrape
from k2.transport.offsets import watermarks
from k2.transport.topics import dlq_topic, gaps_topic, raw_topic

_KAFKA_TIMEOUT_S = 3.0
# The column that dates a table's rows: the match time where the table has one. A bar table is
# dated by when its bars were last written (``updated_at``), not by ``bar_end``: the open bar's
# end lies in the future, and a late trade revises a closed bar without moving any bar's end.
_TIME_COLUMNS = ("exchange_ts", "received_us", "quarantined_at", "updated_at", "detected_us")
_REJECTS_TIME = "kafka_timestamp"


@dataclass(frozen=True)
class SymbolFigures:
    exchange: str
    symbol: str
    last_trade_age_s: float | None
    delivered: float
    delivered_per_s: float | None
    unfilled_gaps_1h: int
    unfilled_trades_1h: int


@dataclass(frozen=True)
class TopicFigures:
    topic: str
    end_offsets: dict[int, int]
    settled: dict[int, int] | None  # the offsets Bronze has settled, None before its first commit
    lag: int | None


@dataclass(frozen=True)
class TableFigures:
    table: str
    rows: int
    newest: str | None  # ISO time of the newest row (exchange_ts where the table has it)
    freshness_s: float | None  # now minus ``newest``, never below 0
    rows_last_minute: int | None


@dataclass(frozen=True)
class BadRecords:
    dlq: int | None
    rejects: int | None
    quarantined: int | None


def symbol_figures(
    scrapes: dict[str, Scrape], later: dict[str, Scrape], gaps: dict[tuple[str, str], list[int]]
) -> list[SymbolFigures]:
    """Per exchange and symbol, from the ingests' metrics (``later`` is a second scrape for the
    rate) and the unfilled gap events of the last hour."""
    rows = []
    for name in sorted(scrapes):
        first = scrapes[name]
        second = later.get(name)
        delivered = first.by("k2_ingest_trades_delivered_total", "exchange", "symbol")
        ages = first.by("k2_ingest_last_trade_age_seconds", "exchange", "symbol")
        after = (
            second.by("k2_ingest_trades_delivered_total", "exchange", "symbol") if second else {}
        )
        elapsed = (second.at - first.at) if second is not None else 0.0
        for key in sorted(delivered):
            per_s = (after[key] - delivered[key]) / elapsed if key in after and elapsed else None
            events = gaps.get((key[0], key[1]), [])
            rows.append(
                SymbolFigures(
                    key[0],
                    key[1],
                    ages.get(key),
                    delivered[key],
                    per_s,
                    len(events),
                    sum(events),
                )
            )
    return rows


def unfilled_gaps(
    kafka: Mapping[str, str],
    registry: Mapping[str, str],
    topic_prefix: str,
    since_s: float = 3600.0,
) -> dict[tuple[str, str], list[int]]:
    """(exchange, symbol) → missing trades of each unfilled gap event newer than ``since_s``
    (0 for a time-interval gap, whose trade count is unknown), read from the gap topic (named
    with ``topic_prefix``) with the Kafka and registry client settings ``kafka`` and
    ``registry``."""
    from confluent_kafka.schema_registry import (  # noqa: PLC0415 - only the gaps are Avro here
        SchemaRegistryClient,
    )
    from confluent_kafka.schema_registry.avro import (  # noqa: PLC0415 - only the gaps are Avro here
        AvroDeserializer,
    )

    topic = gaps_topic(topic_prefix)
    decode = AvroDeserializer(SchemaRegistryClient(dict(registry)))
    context = SerializationContext(topic, MessageField.VALUE)
    consumer = Consumer(
        {
            **kafka,
            "group.id": "k2-status",
            "enable.auto.commit": False,
            "log_level": "0",
        }
    )
    found: dict[tuple[str, str], list[int]] = {}
    try:
        meta = consumer.list_topics(topic, timeout=_KAFKA_TIMEOUT_S).topics.get(topic)
        if meta is None or not meta.partitions:
            return found
        start_ms = int((time.time() - since_s) * 1000)
        wanted = [TopicPartition(topic, p, start_ms) for p in meta.partitions]
        starts = consumer.offsets_for_times(wanted, timeout=_KAFKA_TIMEOUT_S)
        ends = {
            p: watermarks(consumer, TopicPartition(topic, p), _KAFKA_TIMEOUT_S)[1]
            for p in meta.partitions
        }
        todo = {tp.partition for tp in starts if 0 <= tp.offset < ends[tp.partition]}
        consumer.assign([tp for tp in starts if tp.partition in todo])
        deadline = time.monotonic() + _KAFKA_TIMEOUT_S
        while todo and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            if message.offset() >= ends[message.partition()] - 1:
                todo.discard(message.partition())
            event = decode(message.value(), context)
            if event is None or event.get("backfilled"):
                continue
            first, last = event.get("first_missing_id"), event.get("last_missing_id")
            missing = last - first + 1 if first is not None and last is not None else 0
            key = (event["exchange"], event["exchange_symbol"])
            found.setdefault(key, []).append(missing)
    finally:
        consumer.close()
    return found


def _watermarks(
    kafka: Mapping[str, str], topics: Iterable[str]
) -> dict[str, dict[int, tuple[int, int]]]:
    """Per topic and partition, (low, high) watermarks; topics that do not exist are left out."""
    consumer = Consumer({**kafka, "group.id": "k2-status", "log_level": "0"})
    out: dict[str, dict[int, tuple[int, int]]] = {}
    try:
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=_KAFKA_TIMEOUT_S).topics.get(topic)
            if meta is None or meta.error is not None:
                continue
            out[topic] = {
                p: watermarks(consumer, TopicPartition(topic, p), _KAFKA_TIMEOUT_S)
                for p in sorted(meta.partitions)
            }
    finally:
        consumer.close()
    return out


def topic_figures(
    kafka: Mapping[str, str],
    exchanges: Sequence[str],
    topic_prefix: str,
    namespace_prefix: str,
    catalog: Any,
) -> tuple[list[TopicFigures], int]:
    """Each raw topic's end offsets and what Bronze settled; and the DLQ records in total.

    ``kafka`` is the client settings (``Settings.kafka_config()``); topics are named with
    ``topic_prefix``, Bronze's tables with ``namespace_prefix``."""
    raws = {exchange: raw_topic(exchange, topic_prefix) for exchange in exchanges}
    dlqs = [dlq_topic(exchange, topic_prefix) for exchange in exchanges]
    marks = _watermarks(kafka, [*raws.values(), *dlqs])
    rows = []
    for exchange, topic in raws.items():
        ends = {p: high for p, (_, high) in marks.get(topic, {}).items()}
        settled = None
        identifier, _ = bronze_tables(exchange, namespace_prefix)
        if catalog is not None and catalog.table_exists(identifier):
            progress = marker_offsets(catalog.load_table(identifier))
            settled = progress.settled.get(topic) if progress is not None else None
        lag = None
        if settled is not None:
            lows = {p: low for p, (low, _) in marks.get(topic, {}).items()}
            lag = sum(
                max(0, end - max(settled.get(p, lows[p] - 1) + 1, lows[p]))
                for p, end in ends.items()
            )
        rows.append(TopicFigures(topic, ends, settled, lag))
    dlq = sum(high - low for topic in dlqs for low, high in marks.get(topic, {}).values())
    return rows, dlq


def _newest(table: Any, column: str) -> Any:
    """The largest value of ``column`` in the table's files, from their statistics."""
    files = table.inspect.data_files()
    if files.num_rows == 0 or "readable_metrics" not in files.column_names:
        return None
    bounds = [
        metrics[column]["upper_bound"]
        for metrics in files.column("readable_metrics").to_pylist()
        if metrics and metrics.get(column) and metrics[column]["upper_bound"] is not None
    ]
    return max(bounds) if bounds else None


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int):  # µs since the epoch (Bronze's received_us)
        return datetime.fromtimestamp(value / 1_000_000, UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def table_figures(catalog: Any, identifier: str, now: datetime) -> TableFigures:
    """Rows, newest row, its age (freshness) and rows of the last minute of one table.

    Rows are dated by the first column of ``_TIME_COLUMNS`` the table has. For the bar tables
    that is ``updated_at``, when a bar was last written or revised, so the freshness says how
    long ago the job last changed the table's data: ``bar_end`` would put an open bar's end in
    the future, and the table's last commit time moves with compaction, which changes no bar.
    A newest time ahead of ``now`` (another machine's clock) counts as fresh: 0, never negative.
    """
    table = catalog.load_table(identifier)
    snapshot = table.current_snapshot()
    summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
    rows = int(summary.get("total-records", 0))
    names = {field.name: field for field in table.schema().fields}
    column = next((c for c in (*_TIME_COLUMNS, _REJECTS_TIME) if c in names), None)
    if column is None or snapshot is None:
        return TableFigures(identifier, rows, None, None, None)
    newest = _as_datetime(_newest(table, column))
    cutoff_dt = now.timestamp() - 60
    kind = str(names[column].field_type)
    moment = datetime.fromtimestamp(cutoff_dt, UTC)
    if kind == "long":
        cutoff = str(int(cutoff_dt * 1_000_000))
    else:  # an Iceberg timestamp literal: with its offset for timestamptz only
        cutoff = repr(
            (moment if kind == "timestamptz" else moment.replace(tzinfo=None)).isoformat()
        )
    scanned = table.scan(row_filter=f"{column} >= {cutoff}", selected_fields=(column,))
    recent = scanned.to_arrow().num_rows
    freshness = max(0.0, (now - newest).total_seconds()) if newest is not None else None
    return TableFigures(identifier, rows, newest.isoformat() if newest else None, freshness, recent)


def bad_records(tables: list[TableFigures], dlq: int | None) -> BadRecords:
    rejects = [t.rows for t in tables if "bronze." in t.table and t.table.endswith("_rejects")]
    quarantine = [t.rows for t in tables if t.table.endswith("silver.quarantine")]
    return BadRecords(dlq, sum(rejects) if rejects else None, quarantine[0] if quarantine else None)
