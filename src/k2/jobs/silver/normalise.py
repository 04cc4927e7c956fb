"""Bronze rows of one exchange → unified trades with their validation reasons, as Spark columns.

The exchange-specific parts of the normalisation are the exchange's own SQL
(``k2.exchanges.<exchange>.normalise.SILVER_SQL``, written next to the Python it mirrors); this
module adds what every exchange shares: canonical assets, exact decimals, the exact product, UTC
microsecond timestamps, and the validation rules with their reason codes. Nothing goes through a
float: decimal text is checked to fit decimal(38,18) before it is cast, and ``price × quantity``
is computed from its integer and fraction parts so that no intermediate result is rounded.

That needs Spark's decimal arithmetic to refuse rather than round: with
``spark.sql.decimalOperations.allowPrecisionLoss`` false, a result too wide for 38 digits is an
overflow (null under ``try_*``), never a silently shortened scale. Every job sets it on its
session (:func:`exact_decimals`) and :func:`unified` checks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as sf

from k2.config import SilverSettings
from k2.domain import CANONICAL_ASSETS, micros_from_datetime
from k2.errors import ConfigError
from k2.exchanges import exchange_entry
from k2.lake.tables import unified_trade_columns

DECIMAL = "decimal(38,18)"
_FRACTIONS = "decimal(38,36)"
_DECIMAL_TEXT = "[0-9]+([.][0-9]+)?"
# Java's regex "$" also matches before a trailing line break; "\z" is the end of the input.
_END_OF_INPUT = "\\z"
# The instants a timestamp can hold in Python (and K2's readers): years 1 to 9999, UTC.
_MIN_US = micros_from_datetime(datetime.min.replace(tzinfo=UTC))
_MAX_US = micros_from_datetime(datetime.max.replace(tzinfo=UTC))
PRECISION_LOSS = "spark.sql.decimalOperations.allowPrecisionLoss"

# Reason codes of silver.quarantine, in the order they are checked.
REASONS = (
    "field_missing",  # a field the protocol always sends is absent
    "symbol_unknown",  # the symbol does not map to a canonical BASE/QUOTE
    "price_not_decimal",
    "price_out_of_range",  # does not fit decimal(38,18) without rounding
    "price_not_positive",
    "quantity_not_decimal",
    "quantity_out_of_range",
    "quantity_not_positive",
    "quote_quantity_out_of_range",  # price × quantity does not fit decimal(38,18) exactly
    "side_unknown",
    "trade_id_missing",  # the protocol has trade ids and this trade has none
    "exchange_ts_missing",  # absent or unreadable
    "exchange_ts_in_future",  # beyond max_future_skew_s after the receive time
    "exchange_ts_too_old",  # beyond max_past_skew_s before the receive time
)

UNIFIED = [column.name for column in unified_trade_columns()]
SILVER = [*UNIFIED, "protocol"]


def exact_decimals(spark: Any) -> None:
    """Make the session refuse to round decimal results (see the module docstring). Done by
    every job on its own session, whatever the user's Spark settings say."""
    spark.conf.set(PRECISION_LOSS, "false")


def require_exact_decimals(spark: Any) -> None:
    """Raise :class:`ConfigError` unless the session refuses to round decimal results."""
    if str(spark.conf.get(PRECISION_LOSS, "true")).lower() != "false":
        raise ConfigError(
            f"{PRECISION_LOSS} is true on this Spark session, so decimal results would be "
            "rounded; call k2.jobs.silver.normalise.exact_decimals(spark) first"
        )


def canonical(asset: Column) -> Column:
    """``XBT`` → ``BTC``, ``XDG`` → ``DOGE``, others upper-cased (``k2.domain``'s rule)."""
    upper = sf.upper(asset)
    mapped = upper
    for code, name in CANONICAL_ASSETS.items():
        mapped = sf.when(upper == code, sf.lit(name)).otherwise(mapped)
    return mapped


def decimal_parts(text: Column) -> tuple[Column, Column, Column]:
    """(is decimal text, fits decimal(38,18) exactly, the value or null) of a text column."""
    is_text = text.rlike(f"^(?:{_DECIMAL_TEXT}){_END_OF_INPUT}")
    whole = sf.ltrim(sf.substring_index(text, ".", 1), sf.lit("0"))
    fraction = sf.when(
        sf.instr(text, ".") > 0, sf.rtrim(sf.substring_index(text, ".", -1), sf.lit("0"))
    ).otherwise(sf.lit(""))
    fits = is_text & (sf.length(whole) <= 20) & (sf.length(fraction) <= 18)
    return is_text, fits, sf.when(fits, text.cast(DECIMAL))


def exact_product(price: Column, quantity: Column) -> Column:
    """``price × quantity`` exactly as decimal(38,18), or null when it does not fit.

    Both are non-negative decimal(38,18). Each is split into an integer part (decimal(20,0))
    and a fraction (decimal(18,18)); the four partial products are exact in their types, the
    fraction × fraction one (36 decimals) must have nothing beyond 18 of them, and the sums
    overflow to null (never round) when the total needs more than 20 integer digits.
    """
    whole_p, whole_q = (
        sf.floor(price).cast("decimal(20,0)"),
        sf.floor(quantity).cast("decimal(20,0)"),
    )
    frac_p = (price - whole_p).cast("decimal(18,18)")
    frac_q = (quantity - whole_q).cast("decimal(18,18)")
    wholes = sf.try_multiply(whole_p, whole_q).try_cast(DECIMAL)
    cross = sf.try_add(sf.try_multiply(whole_p, frac_q), sf.try_multiply(frac_p, whole_q))
    fractions = frac_p * frac_q  # decimal(37,36), exact
    rounded = fractions.cast(DECIMAL)
    total = sf.try_add(sf.try_add(wholes, cross), rounded)
    # Compared in one explicit type: Spark compares decimals of different types after casting
    # both to a common type that may drop digits, which would call 0.1234…5 equal to 0.1234.
    exact = fractions.cast(_FRACTIONS) == rounded.cast(_FRACTIONS)
    return sf.when(exact, total)


def unified(records: Any, exchange: str, settings: SilverSettings) -> Any:
    """Bronze-shaped rows of ``exchange`` (raw fields and Kafka lineage) → the unified trade's
    columns, ``protocol``, ``reasons`` (every rule the row fails; empty when valid) and ``raw``
    (the raw fields as JSON text, for quarantine)."""
    require_exact_decimals(records.sparkSession)
    steps = _steps(
        id(records.sparkSession.sparkContext._gateway),  # columns live in one JVM
        exchange,
        tuple(records.columns),
        round(settings.max_future_skew_s * 1_000_000),
        round(settings.max_past_skew_s * 1_000_000),
    )
    frame = records
    for step in steps:
        frame = frame.select(*step)
    return frame


@lru_cache(maxsize=64)
def _steps(
    jvm: int, exchange: str, names: tuple[str, ...], future_us: int, past_us: int
) -> tuple[tuple[Column, ...], ...]:
    """The projections of :func:`unified`, built once per exchange and input columns: a column
    is an expression not bound to a frame, and building one costs a call into the JVM per
    function, which every micro-batch would otherwise pay again."""
    fragments: Mapping[str, str] = exchange_entry(exchange).module("normalise").SILVER_SQL
    raw_names = [c for c in names if c not in _LINEAGE]
    parts = (
        *map(sf.col, names),
        *(sf.expr(text).alias(f"{name}__") for name, text in fragments.items()),
    )
    price_text, price_fits, price = decimal_parts(sf.col("price__"))
    quantity_text, quantity_fits, quantity = decimal_parts(sf.col("quantity__"))
    exchange_us = sf.col("exchange_us__")
    received_us = sf.unix_micros(sf.col("received_us"))
    in_range = exchange_us.between(_MIN_US, _MAX_US)
    values = (
        sf.col("*"),
        price.alias("price_value__"),
        quantity.alias("quantity_value__"),
        price_text.alias("price_text__"),
        price_fits.alias("price_fits__"),
        quantity_text.alias("quantity_text__"),
        quantity_fits.alias("quantity_fits__"),
        sf.when(in_range, exchange_us).alias("exchange_micros__"),
        received_us.alias("received_micros__"),
    )
    product = (
        sf.col("*"),
        exact_product(sf.col("price_value__"), sf.col("quantity_value__")).alias("quote_value__"),
    )
    reasons = _reasons(future_us, past_us)
    base, quote = canonical(sf.col("base__")), canonical(sf.col("quote__"))
    trade = (
        sf.col("message_id__").alias("message_id"),
        sf.lit(exchange).alias("exchange"),
        sf.concat(base, sf.lit("/"), quote).alias("symbol"),
        base.alias("base"),
        quote.alias("quote"),
        sf.col("exchange_symbol"),
        sf.col("trade_id__").alias("trade_id"),
        sf.col("price_value__").alias("price"),
        sf.col("quantity_value__").alias("quantity"),
        sf.col("quote_value__").alias("quote_quantity"),
        sf.col("side__").alias("side"),
        sf.col("order_type__").alias("order_type"),
        sf.timestamp_micros(sf.col("exchange_micros__")).alias("exchange_ts"),
        sf.col("received_us").alias("received_ts"),
        sf.col("kafka_topic"),
        sf.col("kafka_partition"),
        sf.col("kafka_offset"),
        sf.col("protocol"),
        reasons.alias("reasons"),
        sf.when(sf.size(reasons) > 0, sf.to_json(sf.struct(*map(sf.col, raw_names)))).alias("raw"),
    )
    return parts, values, product, trade


_LINEAGE = frozenset(
    {"kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "schema_id"}
)


def _reasons(future_us: int, past_us: int) -> Column:
    """The reason codes of every rule a row fails, as an array (empty when it passes), the
    exchange time allowed ``future_us`` after the receive time and ``past_us`` before it."""
    exchange_us, received_us = sf.col("exchange_micros__"), sf.col("received_micros__")
    price, quantity = sf.col("price_value__"), sf.col("quantity_value__")
    rules: dict[str, Column] = {
        "field_missing": ~sf.coalesce(sf.col("complete__"), sf.lit(False)),
        "symbol_unknown": sf.col("base__").isNull() | sf.col("quote__").isNull(),
        "price_not_decimal": ~sf.coalesce(sf.col("price_text__"), sf.lit(False)),
        "price_out_of_range": sf.col("price_text__") & ~sf.col("price_fits__"),
        "price_not_positive": price <= 0,
        "quantity_not_decimal": ~sf.coalesce(sf.col("quantity_text__"), sf.lit(False)),
        "quantity_out_of_range": sf.col("quantity_text__") & ~sf.col("quantity_fits__"),
        "quantity_not_positive": quantity <= 0,
        "quote_quantity_out_of_range": price.isNotNull()
        & quantity.isNotNull()
        & sf.col("quote_value__").isNull(),
        "side_unknown": sf.col("side__").isNull(),
        "trade_id_missing": sf.col("needs_trade_id__") & sf.col("trade_id__").isNull(),
        "exchange_ts_missing": exchange_us.isNull(),
        "exchange_ts_in_future": exchange_us - received_us > future_us,
        "exchange_ts_too_old": received_us - exchange_us > past_us,
    }
    assert tuple(rules) == REASONS
    flagged = [
        sf.when(sf.coalesce(test, sf.lit(False)), sf.lit(code)) for code, test in rules.items()
    ]
    return sf.array_compact(sf.array(*flagged))


def valid(frame: Any) -> Any:
    """The rows that passed every rule."""
    return frame.where(sf.size("reasons") == 0)


def invalid(frame: Any) -> Any:
    """The rows that failed at least one rule."""
    return frame.where(sf.size("reasons") > 0)


def columns(frame_columns: Iterable[str]) -> list[str]:
    return [name for name in frame_columns if name in SILVER]
