"""Bronze against the real broker, registry, Spark and Iceberg: every offset once, every value kept.

Each test runs the streaming job over its own topics and tables (a lane), with half-second
triggers; waits poll the tables with a deadline. The records are raw Kraken records of every
shape (v1 and v2, odd values included): Bronze keeps whatever its schema accepts.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from k2.config import MaintenanceSettings, Settings
from k2.jobs.batch import BatchWriter
from k2.jobs.layout import Source
from k2.jobs.listener import StreamListener
from k2.jobs.maintain import maintain
from k2.jobs.offsets import checkpoint_has_offsets, marker_offsets, table_progress
from k2.jobs.stream import QUERY_NAME, prepare_tables, start_stream
from k2.jobs.supervisor import stop_between_batches
from k2.lake.catalog import duckdb_connect, duckdb_scan_sql, open_catalog
from k2.observability.metrics import Metrics, StreamMetrics
from k2.schemas import schema_json, schema_text
from k2.schemas.registry import register_value_schema

from . import lanes
from .lanes import wait_until

pytestmark = pytest.mark.integration

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SYMBOLS = ("XBT/USD", "ETH/USD", "XDG/USD", "SOL/EUR", "ADA/USD")


# ---------------------------------------------------------------------------------------------
# helpers


def kraken_record(i: int) -> dict[str, Any]:
    """A raw Kraken trade, v1 or v2 shaped by ``i``, ten seconds after the previous one."""
    base: dict[str, Any] = {
        "exchange_symbol": SYMBOLS[i % len(SYMBOLS)],
        "price": f"{65000 + i}.{i:09d}",
        "side": "b" if i % 3 else "s",
        "received_us": 1_714_564_800_000_000 + i * 10_000_000 + i % 7,
        "connection_id": f"conn-{i // 100}",
        "position": i,
        "occurrence": i % 2,
        "snapshot": i % 11 == 0,
        "message_id": f"kraken:{i}",
        "k2_version": "0.1.0",
    }
    if i % 2:
        v1 = {"volume": f"0.{i:08d}", "time": f"1714564800.{i:06d}", "order_type": "l", "misc": ""}
        return {**base, "protocol": "kraken-v1", **v1}
    v2 = {"qty": f"1.5e-{i % 9}", "ord_type": "market", "trade_id": 10**12 + i}
    return {
        **base,
        "protocol": "kraken-v2",
        "timestamp": f"2024-05-01T12:00:{i % 60:02d}.123456Z",
        **v2,
    }


def produce(settings: Settings, topic: str, values: list[bytes | None]) -> list[tuple[int, int]]:
    """Produce ``values`` (keys cycle over symbols); their (partition, offset), in order."""
    coordinates: list[tuple[int, int]] = [(-1, -1)] * len(values)
    producer = Producer({**settings.kafka_config(), "enable.idempotence": True, "linger.ms": 5})

    def delivered(index: int) -> Callable[[Any, Any], None]:
        def callback(error: Any, message: Any) -> None:
            assert error is None, error
            coordinates[index] = (message.partition(), message.offset())

        return callback

    for index, value in enumerate(values):
        key = SYMBOLS[index % len(SYMBOLS)].encode()
        producer.produce(topic, key=key, value=value, on_delivery=delivered(index))
        producer.poll(0)
    assert producer.flush(30) == 0
    return coordinates


def serializer(settings: Settings, schema: str) -> Callable[[dict[str, Any], str], bytes]:
    registry = SchemaRegistryClient(settings.registry_config())
    avro = AvroSerializer(registry, schema, conf={"auto.register.schemas": True})

    def encode(record: dict[str, Any], topic: str) -> bytes:
        return bytes(avro(record, SerializationContext(topic, MessageField.VALUE)))

    return encode


def micros(value: datetime) -> int:
    return (value.replace(tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


def rows_of(spark: Any, table: str) -> list[Any]:
    return list(spark.table(f"k2.{table}").collect())


def count_of(spark: Any, table: str) -> int:
    return int(spark.sql(f"SELECT count(*) AS n FROM k2.{table}").collect()[0].n)


def has_rows(spark: Any, table: str, count: int) -> bool:
    return count_of(spark, table) >= count


@dataclass
class Lane:
    """A lane streaming one Kraken topic: its settings and its source (topic and tables)."""

    settings: Settings
    source: Source

    @property
    def topic(self) -> str:
        return self.source.topic

    @property
    def layout(self) -> Any:
        return lanes.Lane(self.settings).layout


def make_lane(settings: Settings, root: Path, name: str, partitions: int = 3) -> Lane:
    base = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"topic_partitions": partitions})}
    )
    lane = lanes.make_lane(base, root, name, exchanges=("kraken",))
    return Lane(lane.settings, lane.layout.source("kraken"))


@pytest.fixture
def lane_factory(
    settings: Settings, stack: Any, spark: Any, tmp_path: Path
) -> Iterator[Callable[[str], Lane]]:
    def make(name: str) -> Lane:
        return make_lane(settings, tmp_path, name)

    yield make
    for query in spark.streams.active:
        if query.name == QUERY_NAME:
            query.stop()


def start(spark: Any, lane: Lane, listener: StreamListener | None = None) -> Any:
    on_commit = listener.batch_committed if listener is not None else None
    query, _ = start_stream(spark, lane.settings, lane.layout, on_commit)
    return query


def stream_until(
    spark: Any, lane: Lane, done: Callable[[], bool], listener: StreamListener | None = None
) -> Any:
    """Run the lane's query until ``done``; stop it between batches; return the stopped query."""
    query = start(spark, lane, listener)
    try:
        wait_until(lambda: done() or not query.isActive, f"{lane.source.table} to land")
        assert query.exception() is None, query.exception()
    finally:
        stop_between_batches(query, 120)
    return query


def assert_each_offset_once(spark: Any, lane: Lane, expected: set[tuple[int, int]]) -> None:
    seen = [
        (row.kafka_partition, row.kafka_offset)
        for table in (lane.source.table, lane.source.rejects)
        for row in spark.sql(f"SELECT kafka_partition, kafka_offset FROM k2.{table}").collect()
    ]
    assert len(seen) == len(set(seen)), "an offset landed twice"
    assert set(seen) == expected


# ---------------------------------------------------------------------------------------------
# a landed stream shared by the read-side tests


@dataclass
class Landed:
    lane: Lane
    produced: dict[tuple[int, int], dict[str, Any]]
    schema_id: int
    metrics: Metrics


@pytest.fixture(scope="module")
def landed(
    settings: Settings, stack: Any, spark: Any, tmp_path_factory: pytest.TempPathFactory
) -> Landed:
    lane = make_lane(settings, tmp_path_factory.mktemp("landed"), "landed", partitions=4)
    records = [kraken_record(i) for i in range(600)]
    encode = serializer(settings, schema_text("kraken_raw"))
    values: list[bytes | None] = [encode(record, lane.topic) for record in records]
    coordinates = produce(settings, lane.topic, values)
    metrics = Metrics("bronze-test")
    listener = StreamListener(StreamMetrics(metrics), QUERY_NAME)
    spark.streams.addListener(listener)
    try:
        stream_until(
            spark,
            lane,
            lambda: count_of(spark, lane.source.table) >= len(records)
            and metrics.registry.get_sample_value("k2_stream_offset_lag", _lag(lane, 3)) == 0,
            listener,
        )
    finally:
        spark.streams.removeListener(listener)
    schema_id = int.from_bytes(values[0][1:5], "big")  # type: ignore[index]
    return Landed(lane, dict(zip(coordinates, records, strict=True)), schema_id, metrics)


def _lag(lane: Lane, partition: int) -> dict[str, str]:
    return {"topic": lane.topic, "partition": str(partition)}


def test_every_record_lands_once_with_every_value(spark: Any, landed: Landed) -> None:
    """Every raw record lands in Bronze once, with every value exactly as written and its Kafka
    lineage."""
    rows = rows_of(spark, landed.lane.source.table)
    by_offset = {(row.kafka_partition, row.kafka_offset): row for row in rows}
    assert len(rows) == len(by_offset) == len(landed.produced)
    assert set(by_offset) == set(landed.produced)
    for coordinate, record in landed.produced.items():
        row = by_offset[coordinate].asDict()
        got = {field["name"]: row[field["name"]] for field in schema_json("kraken_raw")["fields"]}
        got["received_us"] = micros(row["received_us"])
        expected = {name: record.get(name) for name in got}
        assert got == expected, coordinate
        assert row["kafka_topic"] == landed.lane.topic
        assert row["schema_id"] == landed.schema_id
        assert row["bronze_written_at"] >= row["kafka_timestamp"]
    assert count_of(spark, landed.lane.source.rejects) == 0


def test_the_listener_reports_rows_and_lag(landed: Landed) -> None:
    """The streaming job's metrics report the rows written, the batches committed, a lag of zero
    once caught up and each batch's duration."""
    sample = landed.metrics.registry.get_sample_value
    assert sample("k2_bronze_rows_written_total", {"exchange": "kraken"}) == len(landed.produced)
    assert (sample("k2_stream_batches_committed_total") or 0) >= 1
    assert sample("k2_stream_offset_lag", _lag(landed.lane, 0)) == 0
    assert (sample("k2_stream_batch_duration_seconds_count") or 0) >= 1


def test_bronze_is_partitioned_by_receive_hour(settings: Settings, landed: Landed) -> None:
    """Bronze is partitioned by the hour K2 received each trade."""
    table = open_catalog(settings.lake_access()).load_table(landed.lane.source.table)
    field = table.spec().fields[0]
    assert str(field.transform) == "hour"
    assert table.schema().find_column_name(field.source_id) == "received_us"
    hours = {task.file.partition[0] for task in table.scan().plan_files()}
    assert len(hours) >= 2  # the records span two hours


def test_bronze_reads_the_same_in_pyiceberg_and_duckdb(settings: Settings, landed: Landed) -> None:
    """pyiceberg and DuckDB read the same Bronze rows Spark wrote."""
    identifier = landed.lane.source.table
    arrow = open_catalog(settings.lake_access()).load_table(identifier).scan().to_arrow()
    from_pyiceberg = sorted(
        (r["kafka_partition"], r["kafka_offset"], r["message_id"], r["price"])
        for r in arrow.to_pylist()
    )
    expected = sorted((p, o, r["message_id"], r["price"]) for (p, o), r in landed.produced.items())
    assert from_pyiceberg == expected
    con = duckdb_connect(settings.lake)
    from_duckdb = con.execute(
        "SELECT kafka_partition, kafka_offset, message_id, price "
        f"FROM {duckdb_scan_sql(settings.lake_access(), identifier)} ORDER BY 1, 2"
    ).fetchall()
    assert sorted(from_duckdb) == expected


# ---------------------------------------------------------------------------------------------
# schema evolution and poison records


V2_FIELD = {"name": "exchange_note", "type": ["null", "string"], "default": None, "doc": "test"}


def test_old_and_new_schema_versions_land_side_by_side(
    spark: Any, settings: Settings, lane_factory: Callable[[str], Lane]
) -> None:
    """Records of an old and a new raw schema version, mixed in one topic, each land decoded by
    their own writer schema, nothing rejected."""
    lane = lane_factory("evolve")
    v1_text = schema_text("kraken_raw")
    v2 = schema_json("kraken_raw")
    v2["fields"].append(V2_FIELD)
    v2_text = json.dumps(v2)
    encode_v1 = serializer(settings, v1_text)
    first = produce(
        settings, lane.topic, [encode_v1(kraken_record(i), lane.topic) for i in range(40)]
    )
    stream_until(spark, lane, lambda: count_of(spark, lane.source.table) >= 40)

    # A version is added while Bronze has already seen the first: mixed records follow.
    registry = SchemaRegistryClient(settings.registry_config())
    v2_id = register_value_schema(registry, lane.topic, v2_text)
    encode_v2 = serializer(settings, v2_text)
    mixed: list[bytes | None] = []
    for i in range(40, 100):
        record = kraken_record(i)
        if i % 2:
            mixed.append(encode_v1(record, lane.topic))
        else:
            mixed.append(encode_v2({**record, "exchange_note": f"note-{i}"}, lane.topic))
    second = produce(settings, lane.topic, mixed)
    stream_until(spark, lane, lambda: count_of(spark, lane.source.table) >= 100)

    rows = {
        row.kafka_offset + 10**6 * row.kafka_partition: row
        for row in rows_of(spark, lane.source.table)
    }
    assert len(rows) == 100
    for index, (partition, offset) in enumerate(first + second):
        row = rows[offset + 10**6 * partition]
        assert row.message_id == f"kraken:{index}"
        if index >= 40 and index % 2 == 0:
            assert row.exchange_note == f"note-{index}" and row.schema_id == v2_id
        else:
            assert row.exchange_note is None and row.schema_id != v2_id
    assert count_of(spark, lane.source.rejects) == 0


def test_poison_records_go_to_rejects_and_the_rest_lands(
    spark: Any, settings: Settings, lane_factory: Callable[[str], Lane]
) -> None:
    """Each kind of undecodable record goes to the rejects table with its bytes and the reason,
    while every other record lands once."""
    lane = lane_factory("poison")
    encode = serializer(settings, schema_text("kraken_raw"))
    registry = SchemaRegistryClient(settings.registry_config())
    foreign = '{"type": "record", "name": "Other", "fields": [{"name": "n", "type": "long"}]}'
    foreign_id = registry.register_schema("test.bronze.foreign-value", Schema(foreign, "AVRO"))
    good = encode(kraken_record(0), lane.topic)
    poison: dict[str, bytes | None] = {
        "wrong_magic_byte": b"\x01" + good[1:],
        "unknown_schema_id": b"\x00" + (2**31 - 7).to_bytes(4, "big") + good[5:],
        "incompatible_schema": b"\x00" + foreign_id.to_bytes(4, "big") + b"\x02",
        "undecodable_body": good[:12],
        "short_value": b"\x00\x00",
        "null_value": None,
    }
    values: list[bytes | None] = []
    kinds: list[str | None] = []
    for i in range(60):
        values.append(encode(kraken_record(i), lane.topic))
        kinds.append(None)
        if i % 10 == 5:
            kind = list(poison)[i // 10]
            values.append(poison[kind])
            kinds.append(kind)
    coordinates = produce(settings, lane.topic, values)
    stream_until(spark, lane, lambda: count_of(spark, lane.source.rejects) >= len(poison))

    rejects = {(r.kafka_partition, r.kafka_offset): r for r in rows_of(spark, lane.source.rejects)}
    expected = {c: (k, v) for c, k, v in zip(coordinates, kinds, values, strict=True) if k}
    assert set(rejects) == set(expected)
    for coordinate, (kind, value) in expected.items():
        row = rejects[coordinate]
        assert row.error_kind == kind and row.error
        assert (bytes(row.value) if row.value is not None else None) == value
    assert_each_offset_once(spark, lane, set(coordinates))


# ---------------------------------------------------------------------------------------------
# exactly once: replays and lost checkpoints


class DriverDiedError(Exception):
    """Stands for the driver dying at the worst moment."""


def _writer(spark: Any, lane: Lane) -> BatchWriter:
    """A fresh writer, as a restarted driver builds it (markers read from the tables)."""
    layout = lane.layout
    settings = lane.settings
    resolvers = prepare_tables(spark, settings.lake_access(), settings.registry_config(), layout)
    catalog = open_catalog(settings.lake_access())
    progress = {
        table: table_progress(spark, catalog, table)
        for table in (lane.source.table, lane.source.rejects, *layout.silver.values())
    }
    return BatchWriter(
        spark,
        settings.stream,
        settings.silver,
        settings.gold,
        layout,
        catalog,
        resolvers,
        progress,
    )


def test_a_replayed_batch_is_written_once(
    spark: Any, settings: Settings, lane_factory: Callable[[str], Lane], monkeypatch: Any
) -> None:
    """A micro-batch replayed after the driver died between two commits is written once, however
    often it is replayed."""
    lane = lane_factory("replay")
    encode = serializer(settings, schema_text("kraken_raw"))
    values: list[bytes | None] = [encode(kraken_record(i), lane.topic) for i in range(50)]
    values[7] = b"\x07poison"
    coordinates = produce(settings, lane.topic, values)
    batch = (
        spark.read.format("kafka")
        .options(**{"kafka.bootstrap.servers": settings.kafka_bootstrap, "subscribe": lane.topic})
        .load()
    )

    # The driver dies after the trades commit, before the rejects commit ...
    writer = _writer(spark, lane)

    def die(*args: Any) -> None:
        raise DriverDiedError

    monkeypatch.setattr(writer.bronze[0], "_append_rejects", die)
    with pytest.raises(DriverDiedError):
        writer(batch, 0)
    assert count_of(spark, lane.source.table) == 49 and count_of(spark, lane.source.rejects) == 0
    # ... a run without checkpoint would start at that batch, not after it ...
    progress = table_progress(spark, open_catalog(settings.lake_access()), lane.source.table)
    assert progress.resume == {} and progress.settled
    # ... and the restarted driver replays the batch, twice for good measure.
    _writer(spark, lane)(batch, 0)
    _writer(spark, lane)(batch, 0)
    assert_each_offset_once(spark, lane, set(coordinates))


def test_a_lost_checkpoint_resumes_from_the_tables(
    spark: Any, settings: Settings, lane_factory: Callable[[str], Lane]
) -> None:
    """With its checkpoint deleted, the stream resumes from the offsets the tables recorded, so
    every record lands once."""
    lane = lane_factory("lostckpt")
    encode = serializer(settings, schema_text("kraken_raw"))
    produced: list[tuple[int, int]] = []
    query = start(spark, lane)
    try:
        for first, end in ((0, 60), (60, 90)):  # two micro-batches
            batch = [encode(kraken_record(i), lane.topic) for i in range(first, end)]
            produced += produce(settings, lane.topic, list[bytes | None](batch))
            wait_until(partial(has_rows, spark, lane.source.table, end), "a batch")
    finally:
        stop_between_batches(query, 120)
    shutil.rmtree(lane.layout.checkpoint)
    progress = table_progress(spark, open_catalog(settings.lake_access()), lane.source.table)
    second = produce(
        settings, lane.topic, [encode(kraken_record(i), lane.topic) for i in range(90, 150)]
    )
    query = stream_until(spark, lane, lambda: count_of(spark, lane.source.table) >= 150)

    assert_each_offset_once(spark, lane, set(produced + second))
    # Resumed at the start of the last committed batch: neither earliest nor latest.
    resume = progress.resume.get(lane.topic, {})
    replayed = [(p, o) for p, o in produced if o > resume.get(p, -1)]
    assert 0 < len(replayed) < len(produced)
    # The lane's gap topic is empty: every record read is one of the lane's trades.
    read = sum(p["numInputRows"] for p in query.recentProgress)
    assert read == len(replayed) + len(second)


# ---------------------------------------------------------------------------------------------
# maintenance


def _files_in_hour(spark: Any, table: str, hour: int) -> int:
    files = spark.sql(f"SELECT partition.received_us_hour AS h FROM k2.{table}.files").collect()
    return sum(1 for row in files if row.h == hour)


def test_maintenance_compacts_small_files_while_the_stream_writes(
    spark: Any, settings: Settings, lane_factory: Callable[[str], Lane]
) -> None:
    """Maintenance compacts a table's small files while the stream keeps writing, changes no row and
    keeps the stream's position."""
    lane = lane_factory("maintain")
    table = lane.source.table
    hour = 1_714_564_800 // 3600  # kraken_record(0..359) were received in this hour
    encode = serializer(settings, schema_text("kraken_raw"))
    coordinates: list[tuple[int, int]] = []

    def produce_records(first: int, last: int) -> None:
        batch = [encode(kraken_record(i), lane.topic) for i in range(first, last)]
        coordinates.extend(produce(settings, lane.topic, list[bytes | None](batch)))

    query = start(spark, lane)
    try:
        for first in range(0, 200, 50):  # one micro-batch each: four commits of small files
            produce_records(first, first + 50)
            wait_until(partial(has_rows, spark, table, first + 50), "a micro-batch")
        in_hour = f"SELECT * FROM k2.{table} WHERE hours(received_us) = {hour}"
        before = sorted(tuple(r) for r in spark.sql(in_hour).drop("bronze_written_at").collect())
        files_before = _files_in_hour(spark, table, hour)
        # The next hour's trades keep arriving while maintenance runs.
        writer = threading.Thread(target=produce_records, args=(400, 460))
        writer.start()
        config = MaintenanceSettings(snapshot_retention_hours=0, retain_last=1, min_input_files=2)
        (report,) = maintain(spark, settings.lake_access(), config, [table])
        writer.join()
        wait_until(lambda: count_of(spark, table) >= 260, "the next hour's trades")
    finally:
        stop_between_batches(query, 120)

    assert _files_in_hour(spark, table, hour) < files_before
    after = sorted(tuple(r) for r in spark.sql(in_hour).drop("bronze_written_at").collect())
    assert after == before
    assert_each_offset_once(spark, lane, set(coordinates))
    assert report.counts["rewritten_data_files_count"] >= files_before
    # The stream's position survives expiry, behind the compaction's snapshots.
    assert marker_offsets(open_catalog(settings.lake_access()).load_table(table)) is not None


def test_a_checkpoint_without_planned_offsets_does_not_count(spark: Any, tmp_path: Path) -> None:
    """Only a checkpoint holding planned offsets is resumed from; an empty one is not."""
    assert not checkpoint_has_offsets(spark, str(tmp_path / "none"))
    (tmp_path / "offsets").mkdir()
    assert not checkpoint_has_offsets(spark, str(tmp_path))
    (tmp_path / "offsets" / "0").write_text("v1")
    assert checkpoint_has_offsets(spark, str(tmp_path))
