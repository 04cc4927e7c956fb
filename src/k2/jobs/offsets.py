"""Where Bronze stands in Kafka, as recorded by the Bronze tables themselves.

Every Bronze commit carries, in its Iceberg snapshot summary, the property :data:`MARKER`: per
partition, the last Kafka offset whose fate is settled in that table (written to it, or known not
to belong to it). It is cumulative (each commit merges the batch's last offsets into the previous
marker), so the newest snapshot with a marker says everything; it also carries the marker before
it (:data:`PREVIOUS`), where the micro-batch it committed began. Snapshots written by maintenance
(compaction) carry none; the walk goes back through their ancestors. If expiry removed every
snapshot with a marker, the table's rows answer instead (``max(kafka_offset)`` per partition).

The marker is what makes a micro-batch's write idempotent (rows at or below it are already in the
table) and what a run without a checkpoint resumes from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from k2.errors import TopicError
from k2.lake.tables import OFFSETS_PROPERTY, PREVIOUS_OFFSETS_PROPERTY

MARKER = OFFSETS_PROPERTY
PREVIOUS = PREVIOUS_OFFSETS_PROPERTY
EARLIEST = -2

Offsets = dict[int, int]  # partition -> last settled offset (inclusive)


@dataclass(frozen=True)
class TableProgress:
    """Where a Bronze table stands: ``settled`` offsets, and where a run without checkpoint starts.

    ``resume`` is the marker before the newest commit (:data:`PREVIOUS`): a run without a
    checkpoint re-reads the last committed micro-batch, whose rejects may not have been
    committed yet (they are appended after the trades); everything it re-reads that is already in
    a table is skipped by that table's marker.
    """

    settled: Offsets
    resume: Offsets


def merged(settled: Mapping[int, int], batch: Mapping[int, int]) -> Offsets:
    """``settled`` advanced by a batch's last offsets (never moved back)."""
    out = dict(settled)
    for partition, offset in batch.items():
        out[partition] = max(offset, out.get(partition, -1))
    return out


def marker_value(topic: str, offsets: Mapping[int, int]) -> str:
    """The :data:`MARKER` property's value: ``{"<topic>": {"<partition>": offset}}``."""
    return json.dumps({topic: {str(p): o for p, o in sorted(offsets.items())}}, sort_keys=True)


def parse_marker(value: str, topic: str) -> Offsets:
    return {int(p): int(o) for p, o in json.loads(value).get(topic, {}).items()}


def marker_offsets(table: Any, topic: str) -> TableProgress | None:
    """The newest marker in the ancestry of a pyiceberg table's current snapshot, or None."""
    metadata = table.metadata
    snapshot_id = metadata.current_snapshot_id
    while snapshot_id is not None:
        snapshot = metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:  # expired ancestor: the walk ends
            return None
        summary = snapshot.summary
        properties = summary.additional_properties if summary is not None else {}
        if MARKER in properties:
            settled = parse_marker(properties[MARKER], topic)
            previous = properties.get(PREVIOUS)
            resume = parse_marker(previous, topic) if previous is not None else settled
            return TableProgress(settled, resume)
        snapshot_id = snapshot.parent_snapshot_id
    return None


def scanned_offsets(spark: Any, qualified: str, topic: str) -> Offsets:
    """``max(kafka_offset)`` per partition of ``topic`` in a table, read from its rows."""
    rows = spark.sql(
        f"SELECT kafka_partition AS p, max(kafka_offset) AS o FROM {qualified} "  # noqa: S608
        "WHERE kafka_topic = :topic GROUP BY kafka_partition",
        args={"topic": topic},
    ).collect()
    return {int(row.p): int(row.o) for row in rows}


def table_progress(spark: Any, catalog: Any, identifier: str, topic: str) -> TableProgress:
    """How far table ``identifier`` has settled ``topic``'s offsets (empty for a new table).

    From the newest marker; from the rows (``max(kafka_offset)`` per partition) when expiry left
    no snapshot with one.
    """
    table = catalog.load_table(identifier)
    if table.metadata.current_snapshot_id is None:
        return TableProgress({}, {})
    found = marker_offsets(table, topic)
    if found is not None:
        return found
    scanned = scanned_offsets(spark, f"k2.{identifier}", topic)
    return TableProgress(scanned, scanned)


def topic_partitions(kafka_config: Mapping[str, str], topic: str) -> list[int]:
    """The partition ids of ``topic``; raises :class:`TopicError` when it does not exist."""
    admin = AdminClient({**kafka_config, "log_level": "0"})  # the failure is reported below
    try:
        meta = admin.list_topics(topic, timeout=30)
    except KafkaException as exc:
        raise TopicError(
            f"cannot reach Kafka at {kafka_config.get('bootstrap.servers')}: {exc.args[0]}; "
            f"is it up (`k2 stack status`)?"
        ) from exc
    found = meta.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise TopicError(f"topic {topic} not found; create it with `k2 topics create`")
    return sorted(found.partitions)


def starting_offsets(topic: str, partitions: list[int], settled: Mapping[int, int]) -> str:
    """Spark's ``startingOffsets`` JSON: the offset after the settled one, else earliest.

    Spark requires every partition of the topic in the JSON; a partition Bronze never read from
    starts at its earliest offset, so a partition added later is not skipped.
    """
    starts = {str(p): settled[p] + 1 if p in settled else EARLIEST for p in partitions}
    return json.dumps({topic: starts})


def checkpoint_has_offsets(checkpoint: Path) -> bool:
    """True when a streaming checkpoint holds planned offsets (Spark resumes from it)."""
    folder = checkpoint / "offsets"
    return folder.is_dir() and any(entry.name.isdigit() for entry in folder.iterdir())
