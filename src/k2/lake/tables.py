"""Table definitions of the lakehouse, derived from the data contracts rather than copied.

Bronze keeps every raw field, so its columns are derived from the exchange's raw Avro schema (the
registry's latest version, else the packaged ``.avsc``): one definition, the schema, and the table
follows it. Raw columns are all nullable: Bronze never refuses a record its schema accepted, and
a field a later schema version drops must not break the append of newer records; validation is
Silver's job. The Kafka lineage columns Bronze adds are required.

Silver and Gold hold the unified trade, so their columns are derived from
:class:`k2.domain.Trade` (types from its annotations, comments from ``TRADE_FIELD_DOCS``); the
bars and the gap events have their own definitions here (the gaps from the gap Avro schema).

Partitioning. Bronze: ``hours(received_us)``: the receive time is on every record, is never
null, and grows with the Kafka offsets, so a micro-batch touches one hour (two at the turn of an
hour) and a query for an hour or a day reads only that hour's or day's files; the exchange's own
trade times are protocol-specific (Kraken v1 sends a string), so they cannot partition one
table. Silver: ``days(exchange_ts)``, one exchange per table. Gold: ``hours(exchange_ts)``, so
deduplication and bar recomputation read only the hours a micro-batch touches.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from k2.domain import BAR_INTERVALS, TRADE_FIELD_DOCS, Trade
from k2.errors import LakeError

PARTITION_SOURCE = "received_us"

# Snapshot summary properties of the streaming job's appends: the Kafka offsets a table has
# settled, and those settled before the commit (see k2.jobs.offsets). Maintenance keeps the newest
# snapshot with them. Tables written before the job covered every layer carry the legacy names.
OFFSETS_PROPERTY = "k2.stream.offsets"
PREVIOUS_OFFSETS_PROPERTY = "k2.stream.previous-offsets"
LEGACY_OFFSETS_PROPERTY = "k2.bronze.offsets"
LEGACY_PREVIOUS_OFFSETS_PROPERTY = "k2.bronze.previous-offsets"

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
    identifier_fields: tuple[str, ...] = ()  # Iceberg's row identity (required columns)
    write_order: tuple[str, ...] = ()  # sort within each written file, for row-group pruning

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

    def layout_sql(self) -> list[str]:
        """``ALTER TABLE`` statements that set the identifier fields and the write order."""
        statements = []
        if self.identifier_fields:
            fields = ", ".join(f"`{name}`" for name in self.identifier_fields)
            statements.append(f"ALTER TABLE {self.qualified} SET IDENTIFIER FIELDS {fields}")
        if self.write_order:
            order = ", ".join(f"`{name}`" for name in self.write_order)
            statements.append(f"ALTER TABLE {self.qualified} WRITE LOCALLY ORDERED BY {order}")
        return statements


KAFKA_LINEAGE: tuple[Column, ...] = (
    Column("kafka_topic", "string", True, "Kafka topic the record was read from."),
    Column("kafka_partition", "int", True, "Kafka partition of the record."),
    Column("kafka_offset", "bigint", True, "Kafka offset of the record within its partition."),
    Column("kafka_timestamp", "timestamp", True, "Kafka record timestamp (producer create time)."),
)
BRONZE_WRITTEN_AT = Column(
    "bronze_written_at", "timestamp", True, "When the Bronze job committed the record."
)


def spark_type(avro_type: Any, named: dict[str, str] | None = None) -> tuple[str, bool]:
    """The Spark SQL type ``from_avro`` gives an Avro type, and whether the type allows null.

    ``named`` holds the record types defined so far in the schema, by name (a later field may
    name one instead of repeating it); each record met is added to it.
    Raises :class:`LakeError` for unions of several non-null types, which have no column type,
    and for a name no earlier field defined.
    """
    named = {} if named is None else named
    if isinstance(avro_type, list):
        branches = [branch for branch in avro_type if branch != "null"]
        if len(branches) != 1:
            raise LakeError(f"Avro union {avro_type} has no single column type; use [null, T]")
        return spark_type(branches[0], named)[0], len(branches) < len(avro_type)
    if isinstance(avro_type, str):
        if avro_type in named:
            return named[avro_type], False
        if avro_type not in _PRIMITIVES:
            raise LakeError(f"Avro type {avro_type!r} is neither primitive nor defined before")
        return _PRIMITIVES[avro_type], avro_type == "null"
    logical = avro_type.get("logicalType")
    if logical == "decimal":
        return f"decimal({avro_type['precision']},{avro_type.get('scale', 0)})", False
    if logical in _LOGICAL:
        return _LOGICAL[logical], False
    kind = avro_type["type"]
    if kind == "record":
        fields = ", ".join(
            f"`{f['name']}`: {spark_type(f['type'], named)[0]}" for f in avro_type["fields"]
        )
        struct = f"struct<{fields}>"
        name = avro_type.get("name")
        if name:
            named[name] = struct
            if avro_type.get("namespace"):
                named[f"{avro_type['namespace']}.{name}"] = struct
        return struct, False
    if kind == "array":
        return f"array<{spark_type(avro_type['items'], named)[0]}>", False
    if kind == "map":
        return f"map<string, {spark_type(avro_type['values'], named)[0]}>", False
    return spark_type(kind, named)


def avro_columns(avro_schema: Mapping[str, Any]) -> list[Column]:
    """One nullable column per field of a record schema, with the field's type and doc."""
    named: dict[str, str] = {}
    return [
        Column(f["name"], spark_type(f["type"], named)[0], False, f.get("doc", ""))
        for f in avro_schema["fields"]
    ]


def bronze_tables(name: str, prefix: str = "") -> tuple[str, str]:
    """The identifiers of the Bronze tables of one topic: ``bronze.<name>_trades`` and
    ``bronze.<name>_rejects`` for an exchange's trades, ``bronze.gaps`` and
    ``bronze.gaps_rejects`` for the gap events."""
    table = f"{prefix}bronze.{name}" if name == "gaps" else f"{prefix}bronze.{name}_trades"
    return table, f"{prefix}bronze.{name}_rejects"


def bronze_book_tables(exchange: str, prefix: str = "") -> tuple[str, str]:
    """The Bronze tables of an exchange's book topic: ``bronze.<exchange>_books`` and
    ``bronze.<exchange>_books_rejects``."""
    return f"{prefix}bronze.{exchange}_books", f"{prefix}bronze.{exchange}_books_rejects"


def bronze_trades(
    identifier: str, raw_schema: Mapping[str, Any], partition_source: str = PARTITION_SOURCE
) -> TableDefinition:
    """``bronze.<exchange>_trades`` (or ``bronze.gaps``): every field of ``raw_schema``, then the
    Kafka lineage, partitioned by the hour of ``partition_source`` (a required timestamp)."""
    raw = avro_columns(raw_schema)
    lineage = [
        *KAFKA_LINEAGE,
        Column("schema_id", "int", False, "Writer schema id."),
        BRONZE_WRITTEN_AT,
    ]
    clash = {c.name for c in raw} & {c.name for c in lineage}
    if clash:
        raise LakeError(f"raw schema fields {sorted(clash)} clash with Bronze's lineage columns")
    if partition_source not in {c.name for c in raw}:
        raise LakeError(f"raw schema {raw_schema.get('name')} has no {partition_source} field")
    return TableDefinition(
        identifier=identifier,
        columns=(*raw, *lineage),
        partitioning=(f"hours({partition_source})",),
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


_UNIFIED_TYPES: Mapping[Any, str] = {
    str: "string",
    Decimal: "decimal(38,18)",
    datetime: "timestamp",
}

KAFKA_ORIGIN: tuple[Column, ...] = KAFKA_LINEAGE[:3]  # topic, partition, offset
PROTOCOL = Column("protocol", "string", True, "Feed protocol: kraken-v2, binance-trade, ...")


def _unified_type(annotation: Any) -> tuple[str, bool]:
    """Spark SQL type of one ``Trade`` annotation, and whether it is required."""
    args = typing.get_args(annotation)
    if type(None) in args:
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _unified_type(inner)[0], False
    if typing.get_origin(annotation) is typing.Literal:
        return "string", True
    if annotation not in _UNIFIED_TYPES:
        raise LakeError(f"unified trade field type {annotation!r} has no column type")
    return _UNIFIED_TYPES[annotation], True


def unified_trade_columns() -> tuple[Column, ...]:
    """The unified trade of DESIGN.md §3: every ``Trade`` field, then its Kafka origin."""
    hints = typing.get_type_hints(Trade)
    columns = []
    for trade_field in dataclasses.fields(Trade):
        sql_type, required = _unified_type(hints[trade_field.name])
        columns.append(
            Column(trade_field.name, sql_type, required, TRADE_FIELD_DOCS[trade_field.name])
        )
    return (*columns, *KAFKA_ORIGIN)


def silver_trades(exchange: str, prefix: str = "") -> TableDefinition:
    """``silver.<exchange>_trades``: validated trades of one exchange in the unified schema
    (``prefix`` goes before the namespace, see ``LakeSettings.namespace_prefix``)."""
    return TableDefinition(
        identifier=f"{prefix}silver.{exchange}_trades",
        columns=(
            *unified_trade_columns(),
            PROTOCOL,
            Column("silver_written_at", "timestamp", True, "When the Silver write committed."),
        ),
        partitioning=("days(exchange_ts)",),
        comment=f"Validated {exchange} trades in K2's unified schema, one row per Kafka record.",
        write_order=("exchange_symbol", "exchange_ts"),
    )


def silver_book_changes(prefix: str = "") -> TableDefinition:
    """``silver.book_changes``: every level of every order book message, one row each."""
    return TableDefinition(
        identifier=f"{prefix}silver.book_changes",
        columns=(
            Column("message_id", "string", True, "The book message's id (one per Kafka record)."),
            Column("exchange", "string", True, "Exchange the book belongs to."),
            Column("symbol", "string", True, "Unified BASE/QUOTE symbol."),
            Column("exchange_symbol", "string", True, "Symbol as the exchange spelled it."),
            Column(
                "exchange_ts", "timestamp", False, "The exchange's time of the message, if sent."
            ),
            Column("received_ts", "timestamp", True, "When K2 received the message (UTC)."),
            Column("side", "string", True, "bid or ask."),
            Column("level", "int", True, "Position of the level within its side of the message."),
            Column("price", "decimal(38,18)", True, "Price of the level, exact."),
            Column(
                "size",
                "decimal(38,18)",
                True,
                "Size at that price after the message, exact; 0 removes the level.",
            ),
            Column(
                "is_snapshot",
                "boolean",
                True,
                "The message is a snapshot: it replaces the whole book, levels absent from it "
                "are gone.",
            ),
            Column(
                "sequence",
                "bigint",
                False,
                "The exchange's number of the message (Binance u, OKX seqId, Bybit u, Coinbase "
                "sequence_num).",
            ),
            Column(
                "verified",
                "boolean",
                True,
                "The book after this message matched the exchange's checksum or sequence.",
            ),
            Column(
                "outcome",
                "string",
                True,
                "verified, ignored (older than the snapshot) or unverified.",
            ),
            Column(
                "depth",
                "int",
                False,
                "Levels a side the book is cut to after each message (Kraken, Bybit); null: "
                "not cut.",
            ),
            PROTOCOL,
            *KAFKA_ORIGIN,
            Column("silver_written_at", "timestamp", True, "When the Silver write committed."),
        ),
        partitioning=("days(received_ts)",),
        comment="Order book level changes of every exchange whose books are captured: one row "
        "per level of each message, in the exchange's order.",
        write_order=("exchange", "symbol", "received_ts"),
    )


def silver_quarantine(prefix: str = "") -> TableDefinition:
    """``silver.quarantine``: trades (and order book levels) that failed validation, with every
    reason and the raw fields as sent."""
    return TableDefinition(
        identifier=f"{prefix}silver.quarantine",
        columns=(
            Column("exchange", "string", True, "Exchange the record came from."),
            Column("protocol", "string", False, "Feed protocol of the record, when known."),
            Column("reasons", "array<string>", True, "Every validation rule the trade failed."),
            Column("raw", "string", True, "The record's raw fields as sent, as JSON text."),
            Column("message_id", "string", False, "The record's message_id, when it has one."),
            Column("exchange_symbol", "string", False, "Symbol as the exchange spelled it."),
            Column("exchange_ts", "timestamp", False, "Match time, when it could be read."),
            Column("received_ts", "timestamp", False, "When K2 received the frame."),
            *KAFKA_ORIGIN,
            Column("quarantined_at", "timestamp", True, "When the Silver write committed."),
        ),
        partitioning=("days(quarantined_at)",),
        comment="Trades and order book levels that failed Silver validation, kept whole with "
        "their reason codes.",
    )


def gold_trades(prefix: str = "") -> TableDefinition:
    """``gold.trades``: every exchange's trades, exactly one row per ``message_id``."""
    return TableDefinition(
        identifier=f"{prefix}gold.trades",
        columns=(
            *unified_trade_columns(),
            PROTOCOL,
            Column("gold_written_at", "timestamp", True, "When the Gold write committed."),
        ),
        partitioning=("hours(exchange_ts)",),
        comment="Every trade of every exchange, exactly once (one row per message_id).",
        identifier_fields=("message_id",),
        write_order=("exchange", "symbol", "exchange_ts"),
    )


def bars_table(interval: str, prefix: str = "") -> str:
    """The identifier of the bars of ``interval`` (``1m`` → ``gold.ohlcv_1m``)."""
    if interval not in BAR_INTERVALS:
        raise LakeError(f"unknown bar interval {interval!r}; known: {', '.join(BAR_INTERVALS)}")
    return f"{prefix}gold.ohlcv_{interval}"


_DECIMAL = "decimal(38,18)"
# The 1-minute bars are revised every micro-batch (a MERGE rewrites the files holding the bars it
# revises), so their files are kept to an hour each; the daily bars change little and are many
# years long.
_BAR_PARTITIONING = {"1m": "hours(bar_start)", "1d": "months(bar_start)"}


def gold_bars(interval: str, prefix: str = "") -> TableDefinition:
    """``gold.ohlcv_<interval>``: one OHLCV bar per exchange, symbol and interval with trades."""
    return TableDefinition(
        identifier=bars_table(interval, prefix),
        columns=(
            Column("exchange", "string", True, "Exchange name."),
            Column("symbol", "string", True, "Canonical BASE/QUOTE."),
            Column("bar_start", "timestamp", True, "Start of the bar (inclusive, UTC)."),
            Column("bar_end", "timestamp", True, "End of the bar (exclusive, UTC)."),
            Column("open", _DECIMAL, True, "Price of the first trade (by exchange_ts, trade id)."),
            Column("high", _DECIMAL, True, "Highest price."),
            Column("low", _DECIMAL, True, "Lowest price."),
            Column("close", _DECIMAL, True, "Price of the last trade (by exchange_ts, trade id)."),
            Column("volume", _DECIMAL, True, "Σ quantity, base units."),
            Column("quote_volume", _DECIMAL, True, "Σ price × quantity, quote units, exact."),
            Column("vwap", _DECIMAL, True, "quote_volume / volume, rounded half-even to 18 dp."),
            Column("trade_count", "bigint", True, "Trades in the bar."),
            Column("buy_volume", _DECIMAL, True, "Σ quantity of taker buys."),
            Column("sell_volume", _DECIMAL, True, "Σ quantity of taker sells."),
            Column("first_trade_id", "string", False, "trade_id of the opening trade."),
            Column("last_trade_id", "string", False, "trade_id of the closing trade."),
            Column("updated_at", "timestamp", True, "When the bar was last written or revised."),
        ),
        partitioning=(_BAR_PARTITIONING.get(interval, "days(bar_start)"),),
        comment=f"{interval} OHLCV bars from gold.trades, one row per exchange, symbol, bar.",
        identifier_fields=("exchange", "symbol", "bar_start"),
    )


def gaps_table(prefix: str = "") -> str:
    """The identifier of the gap events in Gold."""
    return f"{prefix}gold.gaps"


def gold_gaps(gap_schema: Mapping[str, Any], prefix: str = "") -> TableDefinition:
    """``gold.gaps``: every gap event of ``market.crypto.gaps`` (fields of the gap Avro schema),
    with the canonical symbol and the Kafka lineage."""
    return TableDefinition(
        identifier=gaps_table(prefix),
        columns=(
            *avro_columns(gap_schema),
            Column("symbol", "string", False, "Canonical BASE/QUOTE of exchange_symbol."),
            *KAFKA_ORIGIN,
            Column("gold_written_at", "timestamp", True, "When the Gold write committed."),
        ),
        partitioning=("days(detected_us)",),
        comment="Gap events: trades K2 knows it missed, and whether they were backfilled.",
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
    for statement in definition.layout_sql():
        spark.sql(statement)
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
