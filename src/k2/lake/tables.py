"""Table definitions of the lakehouse, derived from the data contracts rather than copied.

Bronze keeps every raw field, so its columns are derived from the exchange's raw Avro schema (the
registry's latest version, else the packaged ``.avsc``): one definition, the schema, and the table
follows it. Raw columns are all nullable: Bronze never refuses a record its schema accepted, and
a field a later schema version drops must not break the append of newer records; validation is
Silver's job. The Kafka lineage columns Bronze adds are required.

Partitioning: ``hours(received_us)``. The receive time is on every record, is never null, and
grows with the Kafka offsets, so a micro-batch touches one hour (two at the turn of an hour) and a
query for an hour or a day reads only that hour's or day's files. The exchange's own trade times
are protocol-specific (Kraken v1 sends a string), so they cannot partition one table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from k2.errors import LakeError

PARTITION_SOURCE = "received_us"

# Snapshot summary properties of Bronze commits: the Kafka offsets a table has settled, and those
# settled before the commit (see k2.jobs.offsets). Maintenance keeps the newest snapshot with them.
OFFSETS_PROPERTY = "k2.bronze.offsets"
PREVIOUS_OFFSETS_PROPERTY = "k2.bronze.previous-offsets"

# Table properties every streaming table shares. Fan-out writers accept a micro-batch that
# interleaves two hour partitions without a shuffle; metadata files are pruned on commit so a
# commit every few seconds does not leave one metadata file per commit behind.
STREAMING_PROPERTIES: Mapping[str, str] = {
    "format-version": "2",
    "write.format.default": "parquet",
    "write.parquet.compression-codec": "zstd",
    "write.distribution-mode": "none",
    "write.spark.fanout.enabled": "true",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
    "commit.retry.num-retries": "10",
    "commit.retry.min-wait-ms": "50",
}

_PRIMITIVES = {
    "string": "string",
    "long": "bigint",
    "int": "int",
    "boolean": "boolean",
    "float": "float",
    "double": "double",
    "bytes": "binary",
    "enum": "string",
    "fixed": "binary",
}
_LOGICAL = {
    "timestamp-micros": "timestamp",
    "timestamp-millis": "timestamp",
    "local-timestamp-micros": "timestamp_ntz",
    "local-timestamp-millis": "timestamp_ntz",
    "date": "date",
}


@dataclass(frozen=True)
class Column:
    """One column: its name, Spark SQL type, whether it may be null, and what it means."""

    name: str
    sql_type: str
    required: bool = False
    doc: str = ""

    def ddl(self) -> str:
        comment = f" COMMENT '{_quote(self.doc)}'" if self.doc else ""
        return f"`{self.name}` {self.sql_type}{' NOT NULL' if self.required else ''}{comment}"


@dataclass(frozen=True)
class TableDefinition:
    """A table of catalog ``k2``: identifier ``namespace.name``, columns, partitioning."""

    identifier: str
    columns: tuple[Column, ...]
    partitioning: tuple[str, ...] = ()
    comment: str = ""
    properties: Mapping[str, str] = field(default_factory=lambda: dict(STREAMING_PROPERTIES))

    @property
    def qualified(self) -> str:
        """The name Spark SQL uses: ``k2.<namespace>.<name>``."""
        return f"k2.{self.identifier}"

    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def create_sql(self) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for Spark SQL with the Iceberg catalog ``k2``."""
        columns = ",\n  ".join(column.ddl() for column in self.columns)
        parts = [f"CREATE TABLE IF NOT EXISTS {self.qualified} (\n  {columns}\n) USING iceberg"]
        if self.partitioning:
            parts.append(f"PARTITIONED BY ({', '.join(self.partitioning)})")
        if self.comment:
            parts.append(f"COMMENT '{_quote(self.comment)}'")
        props = ", ".join(f"'{k}'='{_quote(v)}'" for k, v in sorted(self.properties.items()))
        parts.append(f"TBLPROPERTIES ({props})")
        return "\n".join(parts)


KAFKA_LINEAGE: tuple[Column, ...] = (
    Column("kafka_topic", "string", True, "Kafka topic the record was read from."),
    Column("kafka_partition", "int", True, "Kafka partition of the record."),
    Column("kafka_offset", "bigint", True, "Kafka offset of the record within its partition."),
    Column("kafka_timestamp", "timestamp", True, "Kafka record timestamp (producer create time)."),
)
BRONZE_WRITTEN_AT = Column(
    "bronze_written_at", "timestamp", True, "When the Bronze job committed the record."
)


def spark_type(avro_type: Any) -> tuple[str, bool]:
    """The Spark SQL type ``from_avro`` gives an Avro type, and whether the type allows null.

    Raises :class:`LakeError` for unions of several non-null types, which have no column type.
    """
    if isinstance(avro_type, list):
        branches = [branch for branch in avro_type if branch != "null"]
        if len(branches) != 1:
            raise LakeError(f"Avro union {avro_type} has no single column type; use [null, T]")
        return spark_type(branches[0])[0], len(branches) < len(avro_type)
    if isinstance(avro_type, str):
        if avro_type not in _PRIMITIVES:
            raise LakeError(f"Avro type {avro_type!r} (named types) is not supported in Bronze")
        return _PRIMITIVES[avro_type], avro_type == "null"
    logical = avro_type.get("logicalType")
    if logical == "decimal":
        return f"decimal({avro_type['precision']},{avro_type.get('scale', 0)})", False
    if logical in _LOGICAL:
        return _LOGICAL[logical], False
    kind = avro_type["type"]
    if kind == "record":
        fields = ", ".join(
            f"`{f['name']}`: {spark_type(f['type'])[0]}" for f in avro_type["fields"]
        )
        return f"struct<{fields}>", False
    if kind == "array":
        return f"array<{spark_type(avro_type['items'])[0]}>", False
    if kind == "map":
        return f"map<string, {spark_type(avro_type['values'])[0]}>", False
    return spark_type(kind)


def avro_columns(avro_schema: Mapping[str, Any]) -> list[Column]:
    """One nullable column per field of a record schema, with the field's type and doc."""
    return [
        Column(f["name"], spark_type(f["type"])[0], False, f.get("doc", ""))
        for f in avro_schema["fields"]
    ]


def bronze_trades(identifier: str, raw_schema: Mapping[str, Any]) -> TableDefinition:
    """``bronze.<exchange>_trades``: every field of ``raw_schema``, then the Kafka lineage."""
    raw = avro_columns(raw_schema)
    lineage = [
        *KAFKA_LINEAGE,
        Column("schema_id", "int", False, "Writer schema id."),
        BRONZE_WRITTEN_AT,
    ]
    clash = {c.name for c in raw} & {c.name for c in lineage}
    if clash:
        raise LakeError(f"raw schema fields {sorted(clash)} clash with Bronze's lineage columns")
    if PARTITION_SOURCE not in {c.name for c in raw}:
        raise LakeError(f"raw schema {raw_schema.get('name')} has no {PARTITION_SOURCE} field")
    return TableDefinition(
        identifier=identifier,
        columns=(*raw, *lineage),
        partitioning=(f"hours({PARTITION_SOURCE})",),
        comment=f"Every raw {raw_schema.get('name', 'record')} as sent, with its Kafka lineage.",
    )


def bronze_rejects(identifier: str) -> TableDefinition:
    """``bronze.<exchange>_rejects``: records that could not be decoded, kept byte for byte."""
    return TableDefinition(
        identifier=identifier,
        columns=(
            *KAFKA_LINEAGE,
            Column("kafka_key", "binary", False, "The record's key bytes."),
            Column("value", "binary", False, "The record's value bytes, as read from Kafka."),
            Column("schema_id", "int", False, "Schema id from the header, when there is one."),
            Column("error_kind", "string", True, "Short code of why it was rejected."),
            Column("error", "string", True, "Why it was rejected, for a human."),
            BRONZE_WRITTEN_AT,
        ),
        partitioning=("days(kafka_timestamp)",),
        comment="Records Bronze could not decode, with the reason and their Kafka coordinates.",
    )


def missing_columns(definition: TableDefinition, existing: Sequence[str]) -> list[Column]:
    """Columns of ``definition`` the existing table lacks (a field a newer schema added)."""
    present = {name.lower() for name in existing}
    return [column for column in definition.columns if column.name.lower() not in present]


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


_WIDENINGS = {("int", "bigint"), ("float", "double")}


def ensure_table(spark: Any, definition: TableDefinition) -> list[str]:
    """Create the table if missing and add the columns it lacks; the names of added columns.

    A column a newer schema version added goes in after its predecessor in the definition, so raw
    fields stay ahead of the lineage columns. Widening ``int`` to ``bigint`` or ``float`` to
    ``double`` (allowed by Avro resolution) is applied; any other type change raises
    :class:`LakeError`, because rewriting Bronze is never the remedy.
    """
    spark.sql(definition.create_sql())
    schema = spark.table(definition.qualified).schema
    existing = {f.name.lower(): f.dataType.simpleString() for f in schema.fields}
    added = []
    previous: str | None = None
    for column in definition.columns:
        current = existing.get(column.name.lower())
        if current is None:
            where = f" AFTER `{previous}`" if previous else " FIRST"
            spark.sql(f"ALTER TABLE {definition.qualified} ADD COLUMN {column.ddl()}{where}")
            added.append(column.name)
        elif current != column.sql_type and column.sql_type in _PRIMITIVES.values():
            if (current, column.sql_type) not in _WIDENINGS:
                raise LakeError(
                    f"column {column.name} of {definition.qualified} is {current}, the schema "
                    f"now says {column.sql_type}; only int->bigint and float->double can change"
                )
            spark.sql(
                f"ALTER TABLE {definition.qualified} ALTER COLUMN `{column.name}` "
                f"TYPE {column.sql_type}"
            )
        previous = column.name
    return added
