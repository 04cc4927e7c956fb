"""Bronze's pure parts: table definitions from Avro, offset markers, decode plans, options."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

from k2.config import (
    KafkaSettings,
    LakeSettings,
    MaintenanceSettings,
    Settings,
    StackSettings,
    StreamSettings,
)
from k2.errors import LakeError
from k2.jobs.bronze.decode import DECODED_FLAG, flagged_reader
from k2.jobs.bronze.schemas import SchemaResolver
from k2.jobs.layout import layout
from k2.jobs.listener import offset_lag
from k2.jobs.offsets import (
    MARKER,
    PREVIOUS,
    TableProgress,
    marker_offsets,
    marker_value,
    merged,
    parse_marker,
    starting_offsets,
)
from k2.jobs.session import write_submit_properties
from k2.jobs.stream import kafka_source_options
from k2.lake.maintenance import step_sql
from k2.lake.tables import bronze_rejects, bronze_trades, missing_columns, spark_type
from k2.schemas import schema_json

LINEAGE = [
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "schema_id",
    "bronze_written_at",
]


@pytest.mark.parametrize("exchange", ["kraken", "binance"])
def test_bronze_columns_are_the_raw_fields_then_the_lineage(exchange: str) -> None:
    schema = schema_json(f"{exchange}_raw")
    table = bronze_trades(f"bronze.{exchange}_trades", schema)
    assert table.column_names() == [f["name"] for f in schema["fields"]] + LINEAGE
    raw = table.columns[: len(schema["fields"])]
    assert not any(column.required for column in raw)
    assert table.partitioning == ("hours(received_us)",)
    types = {column.name: column.sql_type for column in table.columns}
    assert types["received_us"] == "timestamp" and types["position"] == "bigint"
    assert types["kafka_partition"] == "int" and types["kafka_offset"] == "bigint"


def test_avro_types_map_to_what_from_avro_produces() -> None:
    assert spark_type(["null", "long"]) == ("bigint", True)
    assert spark_type({"type": "long", "logicalType": "timestamp-micros"}) == ("timestamp", False)
    assert spark_type(
        {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 18}
    ) == (
        "decimal(38,18)",
        False,
    )
    assert spark_type({"type": "array", "items": "string"}) == ("array<string>", False)
    with pytest.raises(LakeError, match="no single column type"):
        spark_type(["null", "long", "string"])


def test_a_raw_field_named_like_a_lineage_column_is_refused() -> None:
    fields = [{"name": "received_us", "type": "long"}, {"name": "kafka_offset", "type": "long"}]
    schema = {"name": "X", "fields": fields}
    with pytest.raises(LakeError, match="kafka_offset"):
        bronze_trades("bronze.x_trades", schema)


def test_create_sql_quotes_names_and_comments() -> None:
    table = bronze_trades("bronze.kraken_trades", schema_json("kraken_raw"))
    sql = table.create_sql()
    assert sql.startswith("CREATE TABLE IF NOT EXISTS k2.bronze.kraken_trades (")
    assert "`timestamp` string COMMENT" in sql and "`kafka_offset` bigint NOT NULL" in sql
    assert "PARTITIONED BY (hours(received_us))" in sql
    assert "'write.spark.fanout.enabled'='true'" in sql
    rejects = bronze_rejects("bronze.kraken_rejects").create_sql()
    assert "`value` binary" in rejects and "PARTITIONED BY (days(kafka_timestamp))" in rejects


def test_a_field_added_by_a_new_schema_version_is_a_missing_column() -> None:
    schema = schema_json("kraken_raw")
    existing = bronze_trades("bronze.k_trades", schema).column_names()
    schema["fields"].append({"name": "venue_note", "type": ["null", "string"], "default": None})
    added = missing_columns(bronze_trades("bronze.k_trades", schema), existing)
    assert [column.name for column in added] == ["venue_note"]


def test_markers_only_move_forward_and_round_trip() -> None:
    assert merged({"t": {0: 10, 1: 5}}, {"t": {0: 7, 2: 3}, "u": {0: 1}}) == {
        "t": {0: 10, 1: 5, 2: 3},
        "u": {0: 1},
    }
    value = marker_value({"t": {1: 5, 0: 10}, "u": {0: 2}})
    assert json.loads(value) == {"t": {"0": 10, "1": 5}, "u": {"0": 2}}
    assert parse_marker(value) == {"t": {0: 10, 1: 5}, "u": {0: 2}}


class _Snapshot:
    def __init__(self, snapshot_id: int, parent: int | None, props: dict[str, str]) -> None:
        self.snapshot_id = snapshot_id
        self.parent_snapshot_id = parent
        self.summary = type("S", (), {"additional_properties": props})()


class _Metadata:
    def __init__(self, current: int | None, snapshots: list[_Snapshot]) -> None:
        self.current_snapshot_id = current
        self._snapshots = {s.snapshot_id: s for s in snapshots}

    def snapshot_by_id(self, snapshot_id: int) -> _Snapshot | None:
        return self._snapshots.get(snapshot_id)


def test_the_marker_is_found_behind_a_compaction_snapshot() -> None:
    snapshots = [
        _Snapshot(1, None, {MARKER: marker_value({"t": {0: 4}})}),
        _Snapshot(
            2, 1, {MARKER: marker_value({"t": {0: 9}}), PREVIOUS: marker_value({"t": {0: 4}})}
        ),
        _Snapshot(3, 2, {}),  # rewrite_data_files
    ]
    table = type("T", (), {"metadata": _Metadata(3, snapshots)})()
    assert marker_offsets(table) == TableProgress(settled={"t": {0: 9}}, resume={"t": {0: 4}})
    expired = type("T", (), {"metadata": _Metadata(3, snapshots[2:])})()
    assert marker_offsets(expired) is None


def test_a_table_written_before_the_rename_keeps_its_marker() -> None:
    legacy = {"k2.bronze.offsets": marker_value({"t": {0: 9}})}
    table = type("T", (), {"metadata": _Metadata(1, [_Snapshot(1, None, legacy)])})()
    assert marker_offsets(table) == TableProgress(settled={"t": {0: 9}}, resume={"t": {0: 9}})


def test_starting_offsets_name_every_partition() -> None:
    starts = json.loads(starting_offsets({"t": [0, 1, 2], "u": [0]}, {"t": {0: 9, 2: 0}}))
    assert starts == {"t": {"0": 10, "1": -2, "2": 1}, "u": {"0": -2}}


def test_offset_lag_is_latest_minus_end_per_partition() -> None:
    latest = json.dumps({"t": {"0": 100, "1": 50}})
    end = json.dumps({"t": {"0": 90, "1": 50}})
    assert offset_lag(latest, end) == {"t": {0: 10, 1: 0}}
    assert offset_lag(None, end) == {}


def test_the_decoded_flag_defaults_to_true() -> None:
    reader = json.loads(flagged_reader(json.dumps(schema_json("kraken_raw"))))
    assert reader["fields"][-1] == {"name": DECODED_FLAG, "type": "boolean", "default": True}


def test_kafka_source_options_carry_sasl_and_tls() -> None:
    kafka = KafkaSettings(
        bootstrap_servers="b:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="k2",
        sasl_password='pa"ss',
        ssl_ca_location=Path("/ca.pem"),
    )
    settings = Settings(kafka=kafka, _env_file=None)
    options = kafka_source_options(settings, ["t", "u"], "earliest")
    assert options["subscribe"] == "t,u"
    assert options["kafka.bootstrap.servers"] == "b:9093"
    assert options["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="k2" password="pa\\"ss";'
    )
    assert options["kafka.ssl.truststore.location"] == "/ca.pem"
    assert options["maxOffsetsPerTrigger"] == str(StreamSettings().max_offsets_per_trigger)


# The ingest's bursts, all exchanges together, that the stream keeps up with (StreamSettings).
INGEST_BURST_PER_S = 100_000


def test_default_trigger_admits_more_than_the_ingest_bursts() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    topics = layout(settings).topics
    options = kafka_source_options(settings, topics, "earliest")
    assert options["subscribe"].split(",") == list(topics)  # one query: one cap for every topic
    burst = INGEST_BURST_PER_S * settings.stream.trigger_interval_s
    assert int(options["maxOffsetsPerTrigger"]) >= burst


def test_maintenance_steps_use_the_retention_settings() -> None:
    settings = Settings(
        maintenance=MaintenanceSettings(snapshot_retention_hours=2, retain_last=3),
        _env_file=None,
    )
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    expire = step_sql("expire", "bronze.k_trades", settings, now)
    assert "older_than => TIMESTAMP '2024-05-01 10:00:00.000000'" in expire
    assert "retain_last => 3" in expire
    compact = step_sql("compact", "bronze.k_trades", settings, now)
    assert "'target-file-size-bytes', '134217728'" in compact
    with pytest.raises(LakeError, match="unknown maintenance step"):
        step_sql("vacuum", "bronze.k_trades", settings, now)


class _Registered:
    def __init__(self, schema_id: int, version: int, text: str) -> None:
        self.schema_id = schema_id
        self.version = version
        self.schema = type("Schema", (), {"schema_str": text, "schema_type": "AVRO"})()


class _FakeRegistry:
    """The few calls SchemaResolver makes, over an in-memory subject."""

    def __init__(self, versions: list[str]) -> None:
        self.versions = list(versions)
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise SchemaRegistryError(503, 50301, "unavailable")

    def get_versions(self, subject: str) -> list[int]:
        self._check()
        return list(range(1, len(self.versions) + 1))

    def get_version(self, subject: str, version: int) -> _Registered:
        return _Registered(version, version, self.versions[version - 1])

    def get_latest_version(self, subject: str) -> _Registered:
        self._check()
        return self.get_version(subject, len(self.versions))

    def clear_latest_caches(self) -> None:
        pass

    def get_schema(self, schema_id: int) -> Any:
        self._check()
        if not 1 <= schema_id <= len(self.versions):
            raise SchemaRegistryError(404, 40403, "Schema not found")
        return self.get_version("", schema_id).schema


def _schema(*extra: str) -> str:
    fields: list[dict[str, Any]] = [{"name": "a", "type": "string"}]
    fields += [{"name": name, "type": ["null", "string"], "default": None} for name in extra]
    return json.dumps({"type": "record", "name": "R", "fields": fields})


def test_a_new_schema_version_is_learned_with_its_reader() -> None:
    registry = _FakeRegistry([_schema()])
    resolver = SchemaResolver(registry, "t-value", _schema(), lambda reader, writer: None)
    assert set(resolver.prime().writers) == {1}
    registry.versions.append(_schema("b"))
    assert resolver.learn({1, 2}) is True
    assert set(resolver.plan.writers) == {1, 2} and resolver.plan.reader == _schema("b")
    assert resolver.learn({1, 2}) is False


def test_unknown_and_unresolvable_ids_are_told_apart() -> None:
    registry = _FakeRegistry([_schema(), _schema("b")])

    def check(reader: str, writer: str) -> str | None:
        return "no" if writer == _schema("b") else None

    resolver = SchemaResolver(registry, "t-value", _schema(), check)
    plan = resolver.prime()
    assert set(plan.writers) == {1} and plan.refused == {2: "no"}
    assert resolver.learn({77}) is False
    assert 77 not in resolver.plan.known()


def test_an_unreachable_registry_is_not_a_verdict() -> None:
    registry = _FakeRegistry([_schema()])
    resolver = SchemaResolver(registry, "t-value", _schema(), lambda reader, writer: None)
    resolver.prime()
    registry.down = True
    with pytest.raises(SchemaRegistryError):
        resolver.learn({5})
    registry.down = False
    assert resolver.learn({5}) is False  # 5 is genuinely unknown once the registry answers


def test_spark_submit_properties_are_private_and_escaped(tmp_path: Path) -> None:
    jars = tmp_path / "jvm" / "spark"
    jars.mkdir(parents=True)
    (jars / "iceberg-spark-runtime-4.0_2.13-1.10.1.jar").touch()
    settings = Settings(
        stack=StackSettings(home=tmp_path / "home", jvm_lib=tmp_path / "jvm"),
        lake=LakeSettings(catalog_password="a\\b c"),
        _env_file=None,  # type: ignore[call-arg]
    )
    path = write_submit_properties(settings, tmp_path / "out" / "k2.conf")
    assert path.stat().st_mode & 0o777 == 0o600
    lines = dict(
        line.split(" ", 1) for line in path.read_text().splitlines() if not line.startswith("#")
    )
    assert "spark.app.name" not in lines
    assert lines["spark.jars"].endswith("iceberg-spark-runtime-4.0_2.13-1.10.1.jar")
    assert lines["spark.driver.extraClassPath"] == lines["spark.jars"]
    assert lines["spark.sql.catalog.k2.jdbc.password"] == "a\\\\b c"
