"""``gold.gaps``: the gap events of ``market.crypto.gaps`` with their canonical symbol.

Bronze keeps each gap event as sent (``bronze.gaps``); Gold adds the canonical ``BASE/QUOTE``
of its exchange symbol (by each exchange's own symbol rule, the one Silver uses), so a completeness
report can join gaps to trades by symbol. The append is exactly once per Kafka offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as sf

from k2.exchanges import exchange_entry
from k2.jobs.commit import MarkedTable
from k2.jobs.offsets import Positions
from k2.jobs.silver.normalise import canonical
from k2.lake.tables import ensure_table, gold_gaps
from k2.schemas import schema_json


def canonical_symbol(exchanges: Sequence[str]) -> Column:
    """The canonical symbol of ``exchange_symbol`` by the row's ``exchange`` (null when the
    exchange is not one of ``exchanges`` or its symbol does not split)."""
    symbol: Any = None
    for name in exchanges:
        fragments = exchange_entry(name).module("normalise").SILVER_SQL
        base, quote = sf.expr(fragments["base"]), sf.expr(fragments["quote"])
        value = sf.concat(canonical(base), sf.lit("/"), canonical(quote))
        test = sf.col("exchange") == name
        symbol = sf.when(test, value) if symbol is None else symbol.when(test, value)
    return symbol if symbol is not None else sf.lit(None).cast("string")


class GoldGaps:
    """The writer of ``gold.gaps``."""

    def __init__(
        self,
        catalog: Any,
        identifier: str,
        topic: str,
        settled: Positions,
        exchanges: Sequence[str],
    ) -> None:
        self.table = MarkedTable(catalog, identifier, [topic], settled)
        self._exchanges = tuple(exchanges)

    @staticmethod
    def prepare(spark: Any, prefix: str) -> None:
        ensure_table(spark, gold_gaps(schema_json("gap"), prefix))

    def append(self, records: Any, batch_last: Positions) -> dict[str, int]:
        """Append the gap events of ``records`` (decoded Bronze rows); their number per
        exchange."""
        definition = gold_gaps(schema_json("gap"))
        columns = [
            canonical_symbol(self._exchanges).alias("symbol")
            if name == "symbol"
            else sf.current_timestamp().alias(name)
            if name == "gold_written_at"
            else sf.col(name)
            for name in definition.column_names()
        ]
        counts = {e: sf.count_if(sf.col("exchange") == e) for e in self._exchanges}
        observed = self.table.append(records, batch_last, counts=counts, columns=columns, files=1)
        return {e: n for e, n in (observed or {}).items() if e in counts and n}
