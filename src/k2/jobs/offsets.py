"""Where the streaming job stands in Kafka, as recorded by the tables themselves.

Every append of the streaming job carries, in its Iceberg snapshot summary, the property
:data:`MARKER`: per topic and partition, the last Kafka offset whose fate is settled in that table
(written to it, or known not to belong to it). It is cumulative (each commit merges the batch's
last offsets into the previous marker), so the newest snapshot with a marker says everything; it
also carries the marker before it (:data:`PREVIOUS`), where the micro-batch it committed began.
Snapshots written by maintenance (compaction) carry none; the walk goes back through their
ancestors. If expiry removed every snapshot with a marker, the table's rows answer instead
(``max(kafka_offset)`` per topic and partition).

The marker is what makes an append idempotent (rows at or below it are already in the table) and
what a run without a checkpoint resumes from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from k2.errors import TopicError
from k2.lake.tables import (
    LEGACY_OFFSETS_PROPERTY,
    LEGACY_PREVIOUS_OFFSETS_PROPERTY,
    OFFSETS_PROPERTY,
    PREVIOUS_OFFSETS_PROPERTY,
)

MARKER = OFFSETS_PROPERTY
PREVIOUS = PREVIOUS_OFFSETS_PROPERTY
EARLIEST = -2

Offsets = dict[int, int]  # partition -> last settled offset (inclusive)
Positions = dict[str, Offsets]  # topic -> its partitions' offsets


@dataclass(frozen=True)
class TableProgress:
    """Where a table stands: ``settled`` offsets, and where a run without checkpoint starts.

    ``resume`` is the marker before the newest commit (:data:`PREVIOUS`): a run without a
    checkpoint re-reads the last committed micro-batch, whose later writes (rejects, Silver,
    Gold, bars) may not have been committed yet; everything it re-reads that is already in a
    table is skipped by that table's marker.
    """

    settled: Positions = field(default_factory=dict)
    resume: Positions = field(default_factory=dict)


def merged(
    settled: Mapping[str, Mapping[int, int]], batch: Mapping[str, Mapping[int, int]]
) -> Positions:
    """``settled`` advanced by a batch's last offsets (never moved back)."""
    out: Positions = {topic: dict(offsets) for topic, offsets in settled.items()}
    for topic, offsets in batch.items():
        mine = out.setdefault(topic, {})
        for partition, offset in offsets.items():
            mine[partition] = max(offset, mine.get(partition, -1))
    return out


def restricted(positions: Mapping[str, Mapping[int, int]], topics: Iterable[str]) -> Positions:
    """Only the ``topics`` of ``positions``."""
    wanted = set(topics)
    return {topic: dict(offsets) for topic, offsets in positions.items() if topic in wanted}


def marker_value(positions: Mapping[str, Mapping[int, int]]) -> str:
    """The :data:`MARKER` property's value: ``{"<topic>": {"<partition>": offset}}``."""
    return json.dumps(
        {
            topic: {str(p): o for p, o in sorted(offsets.items())}
            for topic, offsets in sorted(positions.items())
            if offsets
        },
        sort_keys=True,
    )


def parse_marker(value: str) -> Positions:
    parsed = json.loads(value)
    return {
        topic: {int(p): int(o) for p, o in offsets.items()} for topic, offsets in parsed.items()
    }


def marker_offsets(table: Any) -> TableProgress | None:
    """The newest marker in the ancestry of a pyiceberg table's current snapshot, or None."""
    metadata = table.metadata
    snapshot_id = metadata.current_snapshot_id
    while snapshot_id is not None:
        snapshot = metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:  # expired ancestor: the walk ends
            return None
        properties = snapshot.summary.additional_properties if snapshot.summary else {}
        value = properties.get(MARKER) or properties.get(LEGACY_OFFSETS_PROPERTY)
        if value is not None:
            settled = parse_marker(value)
            previous = properties.get(PREVIOUS) or properties.get(LEGACY_PREVIOUS_OFFSETS_PROPERTY)
            return TableProgress(settled, parse_marker(previous) if previous else settled)
        snapshot_id = snapshot.parent_snapshot_id
    return None


def scanned_offsets(spark: Any, qualified: str) -> Positions:
    """``max(kafka_offset)`` per topic and partition in a table, read from its rows."""
    columns = "kafka_topic AS t, kafka_partition AS p, max(kafka_offset) AS o"
    query = f"SELECT {columns} FROM {qualified} GROUP BY 1, 2"  # noqa: S608 - a table name
    rows = spark.sql(query).collect()
    found: Positions = {}
    for row in rows:
        found.setdefault(str(row.t), {})[int(row.p)] = int(row.o)
    return found


def table_progress(spark: Any, catalog: Any, identifier: str) -> TableProgress:
    """How far table ``identifier`` has settled each topic's offsets (empty for a new table).

    From the newest marker; from the rows (``max(kafka_offset)`` per partition) when expiry left
    no snapshot with one.
    """
    table = catalog.load_table(identifier)
    if table.metadata.current_snapshot_id is None:
        return TableProgress()
    found = marker_offsets(table)
    if found is not None:
        return found
    scanned = scanned_offsets(spark, f"k2.{identifier}")
    return TableProgress(scanned, scanned)


def topic_partitions(
    kafka_config: Mapping[str, str], topics: Iterable[str]
) -> dict[str, list[int]]:
    """The partition ids of each topic; raises :class:`TopicError` when one does not exist."""
    admin = AdminClient({**kafka_config, "log_level": "0"})  # the failure is reported below
    found: dict[str, list[int]] = {}
    for topic in topics:
        try:
            meta = admin.list_topics(topic, timeout=30)
        except KafkaException as exc:
            raise TopicError(
                f"cannot reach Kafka at {kafka_config.get('bootstrap.servers')}: {exc.args[0]}; "
                f"is it up (`k2 stack status`)?"
            ) from exc
        state = meta.topics.get(topic)
        if state is None or state.error is not None or not state.partitions:
            raise TopicError(f"topic {topic} not found; create it with `k2 topics create`")
        found[topic] = sorted(state.partitions)
    return found


def starting_offsets(
    partitions: Mapping[str, list[int]], settled: Mapping[str, Mapping[int, int]]
) -> str:
    """Spark's ``startingOffsets`` JSON: the offset after the settled one, else earliest.

    Spark requires every partition of every topic in the JSON; a partition the job never read
    from starts at its earliest offset, so a partition added later is not skipped.
    """
    starts = {
        topic: {
            str(p): settled.get(topic, {})[p] + 1 if p in settled.get(topic, {}) else EARLIEST
            for p in ids
        }
        for topic, ids in partitions.items()
    }
    return json.dumps(starts)


def checkpoint_has_offsets(spark: Any, checkpoint: str) -> bool:
    """True when a streaming checkpoint holds planned offsets (Spark resumes from it); read
    through Spark's own file systems, so an object store location works as a folder does."""
    jvm = spark.sparkContext._jvm
    folder = jvm.org.apache.hadoop.fs.Path(f"{checkpoint}/offsets")
    fs = folder.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(folder):
        return False
    return any(status.getPath().getName().isdigit() for status in fs.listStatus(folder))
