"""The tables reference: every Iceberg table of the catalog ``k2``, from the definitions in
:mod:`k2.lake.tables` for the tables the streaming job's layout names (:mod:`k2.jobs.layout`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from generators.markdown import anchor, code, heading, page, prose, table
from k2.config import Settings
from k2.domain import BAR_INTERVALS
from k2.jobs.layout import layout
from k2.lake import lease
from k2.lake import tables as lake_tables
from k2.lake.tables import Column, TableDefinition
from k2.schemas import schema_json


def with_every_book(settings: Settings) -> Settings:
    """``settings`` with every exchange's books captured, so the book tables are listed too."""
    ingest = settings.ingest
    for exchange in settings.exchanges:
        ingest = ingest.with_exchange(exchange, books=True)
    return settings.model_copy(update={"ingest": ingest})


def definitions(settings: Settings) -> dict[str, list[TableDefinition]]:
    """Every table of every layer, in the order data flows through them (the book tables of
    every exchange). Bronze's columns come from each topic's packaged schema, as before any
    newer version is registered."""
    plan = layout(with_every_book(settings))
    prefix = plan.prefix
    bronze = []
    for source in plan.sources:
        raw = json.loads(source.fallback_schema)
        bronze.append(lake_tables.bronze_trades(source.table, raw, source.partition_source))
        bronze.append(lake_tables.bronze_rejects(source.rejects))
    return {
        "Bronze": bronze,
        "Silver": [
            *(lake_tables.silver_trades(exchange, prefix) for exchange in plan.exchanges),
            lake_tables.silver_book_changes(prefix),
            lake_tables.silver_quarantine(prefix),
        ],
        "Gold": [
            lake_tables.gold_trades(prefix),
            *(lake_tables.gold_bars(interval, prefix) for interval in BAR_INTERVALS),
            lake_tables.gold_gaps(schema_json("gap"), prefix),
        ],
    }


def _layout_facts(definition: TableDefinition) -> str:
    facts = []
    if definition.partitioning:
        facts.append("Partitioned by " + ", ".join(map(code, definition.partitioning)) + ".")
    if definition.identifier_fields:
        names = ", ".join(map(code, definition.identifier_fields))
        facts.append(f"One row per {names} (Iceberg identifier fields).")
    if definition.write_order:
        facts.append("Files sorted by " + ", ".join(map(code, definition.write_order)) + ".")
    return " ".join(facts)


def _nullable(column: Column) -> str:
    return "no" if column.required else "yes"


def _columns(definition: TableDefinition) -> str:
    return table(
        ("column", "type", "null", "description"),
        (
            (code(column.name), code(column.sql_type), _nullable(column), column.doc)
            for column in definition.columns
        ),
    )


def _tables(definitions: list[TableDefinition]) -> Iterator[str]:
    """Each table; one whose columns repeat an earlier table's points at it instead."""
    shown: dict[tuple[object, ...], str] = {}
    for definition in definitions:
        yield heading(3, code(definition.identifier), definition.identifier)
        yield prose(definition.comment)
        yield _layout_facts(definition)
        earlier = shown.get(definition.columns)
        if earlier is None:
            shown[definition.columns] = definition.identifier
            yield _columns(definition)
        else:
            yield f"Columns: the same as [{code(earlier)}](#{anchor(earlier)})."


def tables_page(settings: Settings) -> str:
    layers = definitions(settings)
    control = code(f"{lease.NAMESPACE}.{lease.TABLE}")
    return page(
        "# Tables",
        "Every table of the Iceberg catalog `k2`, generated from the table definitions in "
        f"{code('k2.lake.tables')} when the site is built. Types are Spark SQL's; DuckDB, Spark "
        "and pyiceberg read the same tables under the same names. "
        f"{code('bronze.<exchange>_books')} and its rejects exist for the exchanges whose "
        f"order books are captured ({code('K2_INGEST__<EXCHANGE>__BOOKS=true')}), "
        f"{code('silver.book_changes')} once any exchange's are.",
        prose(lake_tables.__doc__).split("\n\n", 1)[-1],
        *(block for name, group in layers.items() for block in (f"## {name}", *_tables(group))),
        "## Control",
        f"{control} holds no rows: the writer lease of the streaming job and of a rebuild lives "
        "in its snapshots' summaries (see [the streaming job](../streaming.md#rebuilding)).",
    )
