"""Create a K2 table with pyiceberg, without Spark, from its :class:`TableDefinition`.

The same columns, types, required flags, partitioning and identifier fields as
:func:`k2.lake.tables.ensure_table` gives through Spark SQL, for tools that have no Spark session
(benchmarks, a catalog prepared for a query service). Only the types K2's definitions use are
supported; any other raises :class:`LakeError`.
"""

from __future__ import annotations

import re
from typing import Any

from k2.errors import LakeError
from k2.lake.tables import TableDefinition

_TRANSFORM = re.compile(r"(hours|days|months|years)\((\w+)\)")


def _iceberg_type(sql_type: str, next_id: list[int]) -> Any:
    from pyiceberg import types

    simple = {
        "string": types.StringType(),
        "bigint": types.LongType(),
        "int": types.IntegerType(),
        "boolean": types.BooleanType(),
        "double": types.DoubleType(),
        "float": types.FloatType(),
        "binary": types.BinaryType(),
        "timestamp": types.TimestamptzType(),
        "timestamp_ntz": types.TimestampType(),
        "date": types.DateType(),
    }
    if sql_type in simple:
        return simple[sql_type]
    decimal = re.fullmatch(r"decimal\((\d+),(\d+)\)", sql_type)
    if decimal:
        return types.DecimalType(int(decimal.group(1)), int(decimal.group(2)))
    element = re.fullmatch(r"array<(.+)>", sql_type)
    if element:
        next_id[0] += 1
        return types.ListType(next_id[0], _iceberg_type(element.group(1), next_id), True)
    raise LakeError(f"column type {sql_type} is not supported without Spark")


def iceberg_schema(definition: TableDefinition) -> Any:
    """The pyiceberg schema of ``definition``."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField

    next_id = [len(definition.columns)]
    fields = []
    for number, column in enumerate(definition.columns, start=1):
        kind = _iceberg_type(column.sql_type, next_id)
        fields.append(NestedField(number, column.name, kind, column.required, column.doc or None))
    identifiers = [definition.column_names().index(n) + 1 for n in definition.identifier_fields]
    return Schema(*fields, identifier_field_ids=identifiers)


def partition_spec(definition: TableDefinition, schema: Any) -> Any:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import (
        DayTransform,
        HourTransform,
        MonthTransform,
        YearTransform,
    )

    transforms = {
        "hours": (HourTransform, "hour"),
        "days": (DayTransform, "day"),
        "months": (MonthTransform, "month"),
        "years": (YearTransform, "year"),
    }
    fields = []
    for number, expression in enumerate(definition.partitioning, start=1000):
        match = _TRANSFORM.fullmatch(expression)
        if match is None:
            raise LakeError(f"partitioning {expression} is not supported without Spark")
        transform, suffix = transforms[match.group(1)]
        source = schema.find_field(match.group(2)).field_id
        fields.append(PartitionField(source, number, transform(), f"{match.group(2)}_{suffix}"))
    return PartitionSpec(*fields)


def create_table(catalog: Any, definition: TableDefinition) -> Any:
    """Create ``definition`` in the pyiceberg ``catalog`` unless it exists; the table."""
    if catalog.table_exists(definition.identifier):
        return catalog.load_table(definition.identifier)
    schema = iceberg_schema(definition)
    return catalog.create_table(
        definition.identifier,
        schema=schema,
        partition_spec=partition_spec(definition, schema),
        properties=dict(definition.properties),
    )
