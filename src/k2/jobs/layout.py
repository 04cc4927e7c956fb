"""Every topic the streaming job reads and every table it writes, derived from the settings.

One query reads every configured exchange's raw topic, the book topic of each exchange whose
books are captured, and the gap topic. Each topic is a :class:`Source`: Bronze keeps its records
as sent (one table per topic, plus a rejects table); the exchanges' trades then become Silver
(one table per exchange, plus the shared quarantine), Gold (one table for every exchange) and the
bars; the gap events become ``gold.gaps``; the book records stay in Bronze. Table names follow
``LakeSettings.namespace_prefix`` as topic names follow ``KafkaSettings.topic_prefix``, so two
pipelines can share a cluster and a catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from k2.config import Settings
from k2.domain import BAR_INTERVALS
from k2.lake.tables import (
    bars_table,
    bronze_book_tables,
    bronze_tables,
    gaps_table,
    gold_trades,
    silver_book_changes,
    silver_quarantine,
    silver_trades,
)
from k2.schemas import raw_schema_name, schema_text
from k2.transport.topics import book_topic, gaps_topic, raw_topic

# What a topic's records are (Source.kind).
TRADES = "trades"
BOOKS = "books"
GAPS = "gaps"


@dataclass(frozen=True)
class Source:
    """One topic: what its records are, and the Bronze tables that keep them as sent."""

    name: str  # the exchange, <exchange>_books for its book topic, or "gaps"
    topic: str
    schema_name: str  # packaged .avsc, used before any version is registered
    table: str  # bronze.<exchange>_trades, bronze.<exchange>_books or bronze.gaps
    rejects: str
    partition_source: str  # the record's required timestamp that partitions its Bronze table
    kind: str = TRADES  # TRADES, BOOKS or GAPS
    exchange: str | None = None  # the exchange of a trade or book topic

    @property
    def subject(self) -> str:
        return f"{self.topic}-value"

    @property
    def fallback_schema(self) -> str:
        return schema_text(self.schema_name)

    @property
    def is_trades(self) -> bool:
        return self.kind == TRADES


@dataclass(frozen=True)
class Layout:
    """The streaming job's topics, tables and checkpoint."""

    sources: tuple[Source, ...]
    silver: Mapping[str, str]  # exchange -> silver.<exchange>_trades
    book_changes: str | None  # silver.book_changes, when any exchange's books are captured
    quarantine: str
    gold: str
    bars: Mapping[str, str]  # interval -> gold.ohlcv_<interval>, smallest first
    gaps: str
    checkpoint: str  # a folder, or an object store URI (s3://...)
    prefix: str  # namespace prefix of every table

    @property
    def exchanges(self) -> tuple[str, ...]:
        return tuple(source.name for source in self.sources if source.is_trades)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(source.topic for source in self.sources)

    def trade_topics(self) -> tuple[str, ...]:
        return tuple(source.topic for source in self.sources if source.is_trades)

    def book_topics(self) -> tuple[str, ...]:
        return tuple(source.topic for source in self.sources if source.kind == BOOKS)

    def source(self, name: str) -> Source:
        return next(source for source in self.sources if source.name == name)

    def marked_tables(self) -> list[str]:
        """The tables whose commits carry the Kafka offsets they settled (every append of the
        streaming job: Bronze and rejects, Silver, the quarantine, the gaps)."""
        return [
            *(table for source in self.sources for table in (source.table, source.rejects)),
            *self.silver.values(),
            *([self.book_changes] if self.book_changes else []),
            self.quarantine,
            self.gaps,
        ]

    def topic_exchange(self) -> dict[str, str]:
        """Raw topic -> exchange."""
        return {source.topic: source.name for source in self.sources if source.is_trades}


def layout(settings: Settings, exchanges: tuple[str, ...] | None = None) -> Layout:
    """The layout of the configured exchanges (or only ``exchanges``)."""
    topic_prefix = settings.kafka.topic_prefix
    prefix = settings.lake.namespace_prefix
    names = exchanges or settings.exchanges
    sources = [
        Source(
            exchange,
            raw_topic(exchange, topic_prefix),
            raw_schema_name(exchange),
            *bronze_tables(exchange, prefix),
            partition_source="received_us",
            exchange=exchange,
        )
        for exchange in names
    ]
    sources += [
        Source(
            f"{exchange}_books",
            book_topic(exchange, topic_prefix),
            "book_raw",
            *bronze_book_tables(exchange, prefix),
            partition_source="received_us",
            kind=BOOKS,
            exchange=exchange,
        )
        for exchange in names
        if settings.ingest.exchange(exchange).books
    ]
    sources.append(
        Source(
            GAPS,
            gaps_topic(topic_prefix),
            "gap",
            *bronze_tables(GAPS, prefix),
            partition_source="detected_us",
            kind=GAPS,
        )
    )
    return Layout(
        sources=tuple(sources),
        silver={exchange: silver_trades(exchange, prefix).identifier for exchange in names},
        book_changes=(
            silver_book_changes(prefix).identifier
            if any(source.kind == BOOKS for source in sources)
            else None
        ),
        quarantine=silver_quarantine(prefix).identifier,
        gold=gold_trades(prefix).identifier,
        bars={interval: bars_table(interval, prefix) for interval in BAR_INTERVALS},
        gaps=gaps_table(prefix),
        checkpoint=settings.checkpoint_root,
        prefix=prefix,
    )
