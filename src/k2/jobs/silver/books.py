"""Bronze book records of one exchange → one row per level they carry, validated, as Spark columns.

A book record holds the levels of one message as the exchange sent them (``bids`` and ``asks``,
each an array of ``price``/``size`` text). Silver gives each level its own row: the message's
exchange, unified symbol (the exchange's own symbol rule, :mod:`k2.jobs.silver.normalise`'s
canonical assets), times, snapshot flag, sequence and verdict, then the level's side, its position
within that side of the message, and its price and size as exact decimal(38,18) (a size of 0
removes the level). A level whose price or size is not decimal text that fits without rounding,
or whose symbol does not unify, fails validation and goes to ``silver.quarantine`` with its
reasons and the level and message fields as JSON; nothing is dropped without a row somewhere.

A message without any level (an update that changed nothing, an empty snapshot) has no row.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as sf

from k2.exchanges import exchange_entry
from k2.jobs.silver.normalise import canonical, decimal_parts, require_exact_decimals
from k2.lake.tables import silver_book_changes

# Reason codes of a book level in silver.quarantine, in the order they are checked.
BOOK_REASONS = (
    "symbol_unknown",
    "price_not_decimal",
    "price_out_of_range",  # does not fit decimal(38,18) without rounding
    "price_not_positive",
    "size_not_decimal",
    "size_out_of_range",
)

BOOK_CHANGES = [c.name for c in silver_book_changes().columns if c.name != "silver_written_at"]


def _levels(column: str, side: str) -> Column:
    """The levels of one side as structs with their side and position in the message."""
    return sf.transform(
        column,
        lambda level, index: sf.struct(
            sf.lit(side).alias("side"),
            index.alias("level"),
            level["price"].alias("price_text"),
            level["size"].alias("size_text"),
        ),
    )


def book_changes(records: Any, exchange: str) -> Any:
    """Bronze-shaped book records of ``exchange`` (raw fields and Kafka lineage) → one row per
    level: the columns of ``silver.book_changes`` (but the write time), ``reasons`` (empty when
    valid) and ``raw`` (the level and its message's fields as JSON text, for quarantine)."""
    require_exact_decimals(records.sparkSession)
    levels, changes = _steps(id(records.sparkSession.sparkContext._gateway), exchange)
    return records.select(*levels).select(*changes)


@lru_cache(maxsize=32)
def _steps(jvm: int, exchange: str) -> tuple[tuple[Column, ...], tuple[Column, ...]]:
    """The two projections of :func:`book_changes`, built once per exchange (in the JVM
    ``jvm``): building a column costs a call into the JVM per function, which every
    micro-batch would otherwise pay again."""
    fragments: Mapping[str, str] = exchange_entry(exchange).module("normalise").SILVER_SQL
    base = canonical(sf.expr(fragments["base"]))
    quote = canonical(sf.expr(fragments["quote"]))
    levels = (
        sf.col("*"),
        base.alias("base__"),
        quote.alias("quote__"),
        sf.inline(sf.concat(_levels("bids", "bid"), _levels("asks", "ask"))),
    )
    price_text, price_fits, price = decimal_parts(sf.col("price_text"))
    size_text, size_fits, size = decimal_parts(sf.col("size_text"))
    checks: dict[str, Column] = {
        "symbol_unknown": sf.col("base__").isNull() | sf.col("quote__").isNull(),
        "price_not_decimal": ~price_text,
        "price_out_of_range": price_text & ~price_fits,
        "price_not_positive": price <= 0,
        "size_not_decimal": ~size_text,
        "size_out_of_range": size_text & ~size_fits,
    }
    assert tuple(checks) == BOOK_REASONS
    flagged = [
        sf.when(sf.coalesce(test, sf.lit(False)), sf.lit(code)) for code, test in checks.items()
    ]
    reasons = sf.array_compact(sf.array(*flagged))
    raw = sf.to_json(
        sf.struct(
            "side", "level", sf.col("price_text").alias("price"), sf.col("size_text").alias("size"),
            "snapshot", "sequence", "sequence_from", "checksum", "outcome", "reason",
        )
    )  # fmt: skip
    changes = (
        sf.col("message_id"),
        sf.lit(exchange).alias("exchange"),
        sf.concat(sf.col("base__"), sf.lit("/"), sf.col("quote__")).alias("symbol"),
        sf.col("exchange_symbol"),
        sf.col("exchange_us").alias("exchange_ts"),
        sf.col("received_us").alias("received_ts"),
        sf.col("side"),
        sf.col("level"),
        price.alias("price"),
        size.alias("size"),
        sf.col("snapshot").alias("is_snapshot"),
        sf.col("sequence"),
        sf.col("verified"),
        sf.col("outcome"),
        sf.col("depth"),
        sf.col("protocol"),
        sf.col("kafka_topic"),
        sf.col("kafka_partition"),
        sf.col("kafka_offset"),
        reasons.alias("reasons"),
        sf.when(sf.size(reasons) > 0, raw).alias("raw"),
    )
    return levels, changes
