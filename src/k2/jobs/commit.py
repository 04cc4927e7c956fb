"""Appending one micro-batch to one table exactly once: the mechanism every append step shares.

A :class:`MarkedTable` is one table the streaming job appends to (Bronze trades and rejects,
Silver, quarantine, gap events). It keeps the table's marker (:mod:`k2.jobs.offsets`) in memory,
read from the table when a run starts and advanced by each commit: the job is the only writer of
its tables, so the in-memory marker is the table's. An append writes only the rows above the
marker and commits the merged marker in the same snapshot, so a replayed micro-batch writes
nothing twice and nothing is ever rewritten.

A commit that lost a race with another writer of the catalog (maintenance, pyiceberg) is retried.
A commit reported as failed may still have landed, so the table is read back first: if its
newest marker is this append's, the append is not repeated.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import structlog
from pyspark.sql import Column, Observation
from pyspark.sql import functions as sf

from k2.jobs.offsets import MARKER, PREVIOUS, Positions, marker_offsets, marker_value, merged
from k2.lake.commits import is_commit_conflict

log = structlog.get_logger(__name__)

T = TypeVar("T")
COMMIT_ATTEMPTS = 6


def above(settled: Mapping[str, Mapping[int, int]]) -> Column:
    """True for rows past the settled offset of their topic and partition.

    Written as one SQL expression: built from column functions, a ``CASE`` over every topic
    and partition would cost a call into the JVM per branch, every micro-batch.
    """
    branches = [
        f"WHEN kafka_topic = '{_sql_text(name)}' AND kafka_partition = {int(number)} "
        f"THEN {int(offset)}"
        for name, offsets in sorted(settled.items())
        for number, offset in sorted(offsets.items())
    ]
    if not branches:
        return sf.lit(True)
    return sf.expr(f"kafka_offset > CASE {' '.join(branches)} ELSE -1 END")


def _sql_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def with_commit_retries(
    identifier: str, write: Callable[[], T], landed: Callable[[], bool] | None = None
) -> T | None:
    """Run ``write`` (one commit to ``identifier``) until it commits.

    A commit that lost a race is retried after a short back-off; before retrying, ``landed``
    (when given) says whether the failed commit took effect after all, and then None is returned.
    """
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return write()
        except Exception as exc:  # Spark wraps the JVM's exception; its text says which
            if not is_commit_conflict(exc) or attempt == COMMIT_ATTEMPTS:
                raise
            if landed is not None and landed():
                return None
            log.warning(
                "table_commit_retried",
                table=identifier,
                attempt=attempt,
                error=str(exc).splitlines()[0][:300],
            )
            time.sleep(min(2.0, 0.1 * 2**attempt))
    return None


class MarkedTable:
    """One table appended to exactly once per Kafka offset of ``topics``."""

    def __init__(
        self, catalog: Any, identifier: str, topics: Iterable[str], settled: Positions
    ) -> None:
        self.identifier = identifier
        self.topics = frozenset(topics)
        self.settled: Positions = {t: dict(o) for t, o in settled.items() if t in self.topics}
        self._catalog = catalog

    def fresh(self) -> Column:
        """True for rows this table has not settled yet."""
        return above(self.settled)

    def moves(self, batch_last: Positions) -> bool:
        """Whether a batch with these last offsets moves this table's marker."""
        return merged(self.settled, self._mine(batch_last)) != self.settled

    def append(
        self,
        frame: Any,
        batch_last: Positions,
        keep: Column | None = None,
        counts: Mapping[str, Column] | None = None,
        columns: Sequence[Column | str] | None = None,
        files: int | None = None,
    ) -> dict[str, int] | None:
        """Append the rows of ``frame`` that ``keep`` selects and this table has not settled,
        committing the marker moved by ``batch_last``. ``columns`` are the table's columns (as
        expressions over ``frame``), ``files`` the most data files per partition to write.

        Returns ``rows`` (the rows written) and each of ``counts``, aggregates observed over all
        of ``frame`` while it is written; None when a failed commit is found to have landed
        after all (so nothing was counted).
        """
        settled = merged(self.settled, self._mine(batch_last))
        properties = {MARKER: marker_value(settled), PREVIOUS: marker_value(self.settled)}
        written = self.fresh() if keep is None else keep & self.fresh()

        def write() -> dict[str, int]:
            observed = Observation(f"k2-{uuid.uuid4().hex}")
            aggregates = {"rows": sf.count_if(written), **(counts or {})}
            watched = frame.observe(observed, *(c.alias(n) for n, c in aggregates.items()))
            rows = watched.where(written)
            if columns is not None:
                rows = rows.select(*columns)
            if files is not None:
                rows = rows.coalesce(files)
            writer = rows.writeTo(f"k2.{self.identifier}")
            for key, value in properties.items():
                writer = writer.option(f"snapshot-property.{key}", value)
            writer.append()
            return {name: int(value or 0) for name, value in observed.get.items()}

        def landed() -> bool:
            found = marker_offsets(self._catalog.load_table(self.identifier))
            return found is not None and found.settled == settled

        result = with_commit_retries(self.identifier, write, landed)
        self.settled = settled
        return result

    def _mine(self, batch_last: Positions) -> Positions:
        return {t: o for t, o in batch_last.items() if t in self.topics}
