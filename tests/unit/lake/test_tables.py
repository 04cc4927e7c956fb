"""Table definitions: Bronze's columns from the raw Avro schema then the lineage, the SQL that
creates them, and the columns a new schema version adds."""

from __future__ import annotations

import pytest

from k2.errors import LakeError
from k2.lake.tables import (
    avro_columns,
    bronze_rejects,
    bronze_trades,
    missing_columns,
    spark_type,
)
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
    """A Bronze table holds every field of the raw record, all optional, then its Kafka lineage,
    partitioned by the hour of receipt."""
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
    """Each Avro type becomes the column type Spark's from_avro produces, and a union no single
    column can hold is refused."""
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


def test_a_record_type_named_again_later_in_the_schema_has_the_same_column_type() -> None:
    """The book schema defines its level record in ``bids`` and names it in ``asks``: both
    columns are arrays of the same struct; a name never defined is refused in one line."""
    columns = {c.name: c.sql_type for c in avro_columns(schema_json("book_raw"))}
    level = "struct<`price`: string, `size`: string>"
    assert columns["bids"] == columns["asks"] == f"array<{level}>"
    with pytest.raises(LakeError, match="neither primitive nor defined before"):
        spark_type("Level")


def test_a_raw_field_named_like_a_lineage_column_is_refused() -> None:
    """A raw field named like a lineage column is refused, so lineage is never overwritten by a
    exchange's field."""
    fields = [{"name": "received_us", "type": "long"}, {"name": "kafka_offset", "type": "long"}]
    schema = {"name": "X", "fields": fields}
    with pytest.raises(LakeError, match="kafka_offset"):
        bronze_trades("bronze.x_trades", schema)


def test_create_sql_quotes_names_and_comments() -> None:
    """The SQL that creates a Bronze table quotes every name, documents every column and partitions
    trades by hour and rejects by day."""
    table = bronze_trades("bronze.kraken_trades", schema_json("kraken_raw"))
    sql = table.create_sql()
    assert sql.startswith("CREATE TABLE IF NOT EXISTS k2.bronze.kraken_trades (")
    assert "`timestamp` string COMMENT" in sql and "`kafka_offset` bigint NOT NULL" in sql
    assert "PARTITIONED BY (hours(received_us))" in sql
    assert "'write.spark.fanout.enabled'='true'" in sql
    rejects = bronze_rejects("bronze.kraken_rejects").create_sql()
    assert "`value` binary" in rejects and "PARTITIONED BY (days(kafka_timestamp))" in rejects


def test_a_field_added_by_a_new_schema_version_is_a_missing_column() -> None:
    """A field a new raw schema version adds is found as the one column the table lacks, so it is
    added and nothing is deleted."""
    schema = schema_json("kraken_raw")
    existing = bronze_trades("bronze.k_trades", schema).column_names()
    schema["fields"].append({"name": "exchange_note", "type": ["null", "string"], "default": None})
    added = missing_columns(bronze_trades("bronze.k_trades", schema), existing)
    assert [column.name for column in added] == ["exchange_note"]
