"""A private pipeline for one test: its own topics and tables in the session's stack and catalog.

A :class:`Lane` is the session's settings with a topic prefix and a namespace prefix of its own,
so tests that run the streaming job never see each other's records or rows. Raw records are
built the way the ingest builds them (the exchange's own ``to_record``), Avro-encoded with the
registry, and produced keyed by symbol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from k2.config import IngestSettings, Settings
from k2.exchanges.base import Envelope, FieldValue, Protocol_, RawTrade
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.factory import adapter_for
from k2.exchanges.kraken import wire as kraken_wire
from k2.jobs.layout import Layout, layout
from k2.jobs.stream import start_stream
from k2.jobs.supervisor import stop_between_batches
from k2.schemas import schema_text
from k2.transport.topics import TopicAdmin, k2_topics
from tests import polling

WAIT_S = 180.0


@dataclass(frozen=True)
class Lane:
    """Settings whose topics and tables are this test's alone."""

    settings: Settings

    @property
    def layout(self) -> Layout:
        return layout(self.settings)

    def table(self, identifier: str) -> str:
        """``silver.quarantine`` → the lane's ``k2.<prefix>silver.quarantine``."""
        return f"k2.{self.settings.lake.namespace_prefix}{identifier}"


def make_lane(
    settings: Settings,
    root: Path,
    name: str,
    exchanges: Sequence[str] = ("kraken", "binance"),
    books: Sequence[str] = (),
) -> Lane:
    """A lane named ``name`` with half-second triggers, its checkpoint under ``root``; the
    exchanges in ``books`` have their book topics read too."""
    stream = settings.stream.model_copy(
        update={"trigger_interval_s": 0.5, "checkpoint_dir": root / name / "checkpoint"}
    )
    lane_settings = settings.model_copy(
        update={
            "exchanges": tuple(exchanges),
            "kafka": settings.kafka.model_copy(update={"topic_prefix": f"test.{name}."}),
            "lake": settings.lake.model_copy(update={"namespace_prefix": f"t_{name}_"}),
            "stream": stream,
            "gold": settings.gold.model_copy(update={"rollup_interval_s": 1.0}),
        }
    )
    for exchange in books:
        ingest = lane_settings.ingest.with_exchange(exchange, books=True)
        lane_settings = lane_settings.model_copy(update={"ingest": ingest})
    TopicAdmin(lane_settings.kafka_config()).ensure(
        k2_topics(lane_settings.kafka, lane_settings.exchanges, lane_settings.book_exchanges)
    )
    return Lane(lane_settings)


def envelope(protocol: Protocol_, received_us: int, position: int = 0) -> Envelope:
    return Envelope(received_us, "conn-test", position, protocol)


def kraken_v2(
    symbol: str,
    trade_id: int,
    price: str,
    qty: str,
    exchange_us: int,
    received_us: int | None = None,
    side: str = "buy",
) -> RawTrade:
    fields = kraken_wire.v2_trade_fields(
        symbol=symbol,
        side=side,
        price=price,
        qty=qty,
        ord_type="limit",
        trade_id=trade_id,
        timestamp=kraken_wire.format_timestamp_v2(exchange_us),
    )
    at = received_us if received_us is not None else exchange_us + 1_000
    return RawTrade("kraken", symbol, trade_id, fields, envelope("kraken-v2", at, trade_id))


def binance_trade(
    symbol: str,
    trade_id: int,
    price: str,
    quantity: str,
    exchange_us: int,
    received_us: int | None = None,
    buyer_is_maker: bool = False,
) -> RawTrade:
    fields = binance_wire.trade_fields(
        symbol=symbol,
        trade_id=trade_id,
        price=price,
        quantity=quantity,
        trade_time=exchange_us,
        buyer_is_maker=buyer_is_maker,
        event_time=exchange_us,
    )
    at = received_us if received_us is not None else exchange_us + 1_000
    return RawTrade("binance", symbol, trade_id, fields, envelope("binance-trade", at, trade_id))


def to_record(raw: RawTrade, **fields: FieldValue) -> dict[str, Any]:
    """The raw Kafka record the ingest writes for ``raw`` (µs times for Binance), with
    ``fields`` overriding record fields."""
    ingest = IngestSettings(binance={"time_unit": "MICROSECOND"})
    adapter = adapter_for(raw.exchange, ingest)
    return {**adapter.to_record(raw, adapter.message_id(raw), "0.1.0"), **fields}


class RawProducer:
    """Avro-encodes records with the registry and produces them to a lane's topics, each named
    by its source (an exchange for its raw trades, ``<exchange>_books`` for its book)."""

    def __init__(self, lane: Lane) -> None:
        self._lane = lane
        registry = SchemaRegistryClient(lane.settings.registry_config())
        self._serializers = {
            source.name: AvroSerializer(
                registry, schema_text(source.schema_name), conf={"auto.register.schemas": True}
            )
            for source in lane.layout.sources
        }
        self._producer = Producer(
            {**lane.settings.kafka_config(), "enable.idempotence": True, "linger.ms": 5}
        )

    def send(self, records: Iterable[dict[str, Any]], name: str) -> None:
        topic = self._lane.layout.source(name).topic
        serialize = self._serializers[name]
        context = SerializationContext(topic, MessageField.VALUE)
        for record in records:
            value = serialize(record, context)
            self._producer.produce(topic, key=record["exchange_symbol"].encode(), value=value)
            self._producer.poll(0)
        assert self._producer.flush(30) == 0

    def send_raw(self, exchange: str, values: Iterable[bytes | None]) -> None:
        topic = self._lane.layout.source(exchange).topic
        for value in values:
            self._producer.produce(topic, key=b"poison", value=value)
        assert self._producer.flush(30) == 0


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll ``condition`` (see :func:`tests.polling.wait_until`), argument order of the lanes."""
    polling.wait_until(condition, timeout_s, what, every_s=0.25)


def count(spark: Any, qualified: str) -> int:
    return int(spark.sql(f"SELECT count(*) AS n FROM {qualified}").collect()[0].n)


def rows(spark: Any, qualified: str) -> list[dict[str, Any]]:
    return [row.asDict(recursive=True) for row in spark.table(qualified).collect()]


@dataclass(frozen=True)
class Bar:
    """An OHLCV bar computed in the test, from trades, independently of the job."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trade_count: int
    buy_volume: Decimal
    sell_volume: Decimal
    first_trade_id: str | None
    last_trade_id: str | None


def expected_bars(
    trades: Iterable[tuple[str, str, int, str | None, Decimal, Decimal, str]], seconds: int
) -> dict[tuple[str, str, int], Bar]:
    """Bars of (exchange, symbol, exchange µs, trade id, price, quantity, side) tuples."""
    groups: dict[
        tuple[str, str, int], list[tuple[int, int, str | None, Decimal, Decimal, str]]
    ] = {}
    span = seconds * 1_000_000
    for exchange, symbol, micros, trade_id, price, quantity, side in trades:
        number = int(trade_id) if trade_id is not None and trade_id.isdigit() else -1
        key = (exchange, symbol, micros - micros % span)
        groups.setdefault(key, []).append((micros, number, trade_id, price, quantity, side))
    bars = {}
    for key, items in groups.items():
        items.sort(key=lambda t: (t[0], t[1]))
        bars[key] = Bar(
            open=items[0][3],
            high=max(t[3] for t in items),
            low=min(t[3] for t in items),
            close=items[-1][3],
            volume=sum((t[4] for t in items), Decimal(0)),
            quote_volume=sum((t[3] * t[4] for t in items), Decimal(0)),
            trade_count=len(items),
            buy_volume=sum((t[4] for t in items if t[5] == "buy"), Decimal(0)),
            sell_volume=sum((t[4] for t in items if t[5] == "sell"), Decimal(0)),
            first_trade_id=items[0][2],
            last_trade_id=items[-1][2],
        )
    return bars


def running(spark: Any, lane: Lane) -> Iterator[Any]:
    """Start the lane's streaming query; yields (query, writer); stops it afterwards."""
    query, writer = start_stream(spark, lane.settings, lane.layout)
    try:
        yield query, writer
    finally:
        stop_between_batches(query, 120)
