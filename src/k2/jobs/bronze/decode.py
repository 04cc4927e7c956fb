"""Decoding Kafka records in the Confluent wire format, in Spark, each by its own writer schema.

A value is magic byte 0, a 4-byte big-endian schema id, then the Avro body written with that
schema. Every record is decoded with its writer schema and resolved to the current reader schema
(Avro's own resolution, through ``from_avro``'s ``avroSchema`` option), so records of every schema
version come out with the same columns and the fields an old version lacks are null (or their
default). One ``CASE`` over the schema ids present decodes each id's records with that id's writer
schema in a single pass; that is grouping by schema id and a union, without one scan per group.

A record that cannot be decoded is not an error of the job: it gets an ``error_kind`` and an
``error`` text and goes to the rejects table. ``from_avro`` in PERMISSIVE mode returns a struct
of nulls for a body it cannot read, which for a schema whose fields are all optional is a valid
record too; so the reader schema gets one extra field with a default (:data:`DECODED_FLAG`) that
Avro resolution fills in for every body it decoded and that stays null for every body it could
not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import functions as sf
from pyspark.sql.avro.functions import from_avro

HEADER_BYTES = 5
_MAGIC_BYTE = bytearray(b"\x00")
DECODED_FLAG = "k2_decoded__"

# Error kinds of the rejects table, in the order they are checked.
NULL_VALUE = "null_value"
SHORT_VALUE = "short_value"
WRONG_MAGIC_BYTE = "wrong_magic_byte"
UNKNOWN_SCHEMA_ID = "unknown_schema_id"
INCOMPATIBLE_SCHEMA = "incompatible_schema"
UNDECODABLE_BODY = "undecodable_body"
ERROR_KINDS = (
    NULL_VALUE,
    SHORT_VALUE,
    WRONG_MAGIC_BYTE,
    UNKNOWN_SCHEMA_ID,
    INCOMPATIBLE_SCHEMA,
    UNDECODABLE_BODY,
)


@dataclass(frozen=True)
class DecodePlan:
    """What a micro-batch is decoded with.

    ``reader`` is the current reader schema (JSON text); ``writers`` maps each schema id known to
    resolve to it to its writer schema; ``refused`` maps ids that exist but do not resolve to the
    reason; every other id is unknown.
    """

    reader: str
    writers: Mapping[int, str] = field(default_factory=dict)
    refused: Mapping[int, str] = field(default_factory=dict)

    def known(self) -> set[int]:
        return set(self.writers) | set(self.refused)


def flagged_reader(reader: str) -> str:
    """The reader schema plus the :data:`DECODED_FLAG` field (boolean, default true)."""
    schema = json.loads(reader)
    flag = {"name": DECODED_FLAG, "type": "boolean", "default": True}
    schema["fields"] = [*schema["fields"], flag]
    return json.dumps(schema)


def framed(kafka: Any) -> Any:
    """Kafka source rows as lineage columns, key, value and the header's schema id.

    The schema id is the header's signed 32-bit integer (what Confluent serializers write), or
    null when the value has no header (too short, or not starting with the magic byte).
    """
    value = sf.col("value")
    unsigned = sf.conv(sf.hex(sf.substring(value, 2, 4)), 16, 10).cast("bigint")
    signed = sf.when(unsigned >= 2**31, unsigned - 2**32).otherwise(unsigned).cast("int")
    return kafka.select(
        sf.col("topic").alias("kafka_topic"),
        sf.col("partition").alias("kafka_partition"),
        sf.col("offset").alias("kafka_offset"),
        sf.col("timestamp").alias("kafka_timestamp"),
        sf.col("key").alias("kafka_key"),
        value,
        sf.when(
            (sf.length(value) >= HEADER_BYTES) & (sf.substring(value, 1, 1) == sf.lit(_MAGIC_BYTE)),
            signed,
        ).alias("schema_id"),
    )


def decoded(frame: Any, plan: DecodePlan) -> Any:
    """``frame`` (from :func:`framed`) with ``record`` (reader struct), ``error_kind``, ``error``.

    Key and value bytes are kept only on rejected rows, which are all that need them.
    """
    steps = _decoding(id(frame.sparkSession.sparkContext._gateway), plan)
    return frame.withColumn("record", steps[0]).select(*steps[1])


_DECODINGS: dict[tuple[int, int], tuple[DecodePlan, tuple[Any, tuple[Any, ...]]]] = {}


def _decoding(jvm: int, plan: DecodePlan) -> tuple[Any, tuple[Any, ...]]:
    """The columns of :func:`decoded` under ``plan``, built once per plan (in the JVM ``jvm``):
    a column is an expression not bound to a frame, and building one costs a call into the JVM
    per function, which every micro-batch would otherwise pay again."""
    found = _DECODINGS.get((jvm, id(plan)))
    if found is not None and found[0] is plan:
        return found[1]
    error_kind = _error_kind(plan)
    record = sf.when(error_kind.isNull(), _record(plan))
    kind = sf.coalesce(
        error_kind,
        sf.when(sf.col(f"record.{DECODED_FLAG}").isNull(), sf.lit(UNDECODABLE_BODY)),
    )
    keep_bytes = kind.isNotNull()
    columns = (
        "kafka_topic",
        "kafka_partition",
        "kafka_offset",
        "kafka_timestamp",
        sf.when(keep_bytes, sf.col("kafka_key")).alias("kafka_key"),
        sf.when(keep_bytes, sf.col("value")).alias("value"),
        "schema_id",
        "record",
        kind.alias("error_kind"),
        _error_text(kind, plan).alias("error"),
    )
    if len(_DECODINGS) >= 64:  # plans change only when a schema id is new
        _DECODINGS.clear()
    _DECODINGS[(jvm, id(plan))] = (plan, (record, columns))
    return record, columns


def _record(plan: DecodePlan) -> Any:
    reader = flagged_reader(plan.reader)
    options = {"avroSchema": reader, "mode": "PERMISSIVE"}
    body = sf.expr(f"substring(value, {HEADER_BYTES + 1}, length(value) - {HEADER_BYTES})")
    if not plan.writers:
        # Nothing decodable: a typed null keeps the column's type stable for the writer.
        return from_avro(sf.lit(None).cast("binary"), reader, options)
    branches = None
    for schema_id, writer in sorted(plan.writers.items()):
        decode = from_avro(body, writer, options)
        condition = sf.col("schema_id") == schema_id
        branches = (
            sf.when(condition, decode) if branches is None else branches.when(condition, decode)
        )
    return branches


def header_error() -> Any:
    """The error kind of a value without a usable header, or null (a ``CASE`` to extend)."""
    value = sf.col("value")
    return (
        sf.when(value.isNull(), sf.lit(NULL_VALUE))
        .when(sf.length(value) < HEADER_BYTES, sf.lit(SHORT_VALUE))
        .when(sf.substring(value, 1, 1) != sf.lit(_MAGIC_BYTE), sf.lit(WRONG_MAGIC_BYTE))
    )


def _error_kind(plan: DecodePlan) -> Any:
    """Why a row cannot be decoded as far as its header says, or null to decode its body."""
    schema_id = sf.col("schema_id")
    kind = header_error()
    if plan.refused:
        kind = kind.when(schema_id.isin(sorted(plan.refused)), sf.lit(INCOMPATIBLE_SCHEMA))
    if plan.writers:
        kind = kind.when(~schema_id.isin(sorted(plan.writers)), sf.lit(UNKNOWN_SCHEMA_ID))
    else:
        kind = kind.otherwise(sf.lit(UNKNOWN_SCHEMA_ID))
    return kind


def _error_text(kind: Any, plan: DecodePlan) -> Any:
    schema_id = sf.col("schema_id").cast("string")
    refused = sf.lit("writer schema does not resolve to the reader schema")
    for refused_id, reason in sorted(plan.refused.items()):
        refused = sf.when(sf.col("schema_id") == refused_id, sf.lit(reason)).otherwise(refused)
    return (
        sf.when(kind == NULL_VALUE, sf.lit("record has no value (tombstone)"))
        .when(
            kind == SHORT_VALUE,
            sf.concat(
                sf.lit("value of "),
                sf.length("value").cast("string"),
                sf.lit(f" bytes is shorter than the {HEADER_BYTES}-byte header"),
            ),
        )
        .when(
            kind == WRONG_MAGIC_BYTE,
            sf.concat(
                sf.lit("magic byte is 0x"),
                sf.hex(sf.substring("value", 1, 1)),
                sf.lit(", not 0x00"),
            ),
        )
        .when(
            kind == UNKNOWN_SCHEMA_ID,
            sf.concat(sf.lit("schema id "), schema_id, sf.lit(" is not in the registry")),
        )
        .when(
            kind == INCOMPATIBLE_SCHEMA,
            sf.concat(sf.lit("schema id "), schema_id, sf.lit(": "), refused),
        )
        .when(
            kind == UNDECODABLE_BODY,
            sf.concat(sf.lit("Avro body does not decode with writer schema id "), schema_id),
        )
    )
