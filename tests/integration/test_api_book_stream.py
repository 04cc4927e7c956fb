"""The live book stream against a real broker and registry, over a Silver table on a private
catalog: the first message is the book Silver holds, the updates continue it from the next Kafka
offset, so the client's book equals the replay of every message, with nothing missed or twice."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from k2.api.app import create_app
from k2.config import ApiSettings, Settings
from k2.domain import datetime_from_micros
from k2.exchanges.book import Level, OrderBook
from k2.lake.catalog import ensure_namespaces, open_catalog
from k2.lake.create import create_table
from k2.lake.tables import silver_book_changes
from k2.schemas import schema_text
from k2.stack.manager import Stack
from k2.transport.topics import TopicAdmin, book_topic, k2_topics
from tests.integration import gold_rows

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

T0 = 1_796_637_600_000_000


def record(n: int, symbol: str) -> dict[str, Any]:
    """Book message ``n`` of ``symbol``: a snapshot first, then updates that add, change and
    remove levels; every seventh is one the capture ignored."""
    if n == 0:
        bids = [(f"{100 - i}", f"{i + 1}") for i in range(5)]
        asks = [(f"{101 + i}", f"{i + 1}") for i in range(5)]
    else:
        bids = [(f"{100 - n % 6}", "0" if n % 4 == 0 else f"{n}.5")]
        asks = [(f"{101 + n % 5}.25", f"0.{n:02d}")] if n % 3 else []
    ignored = n % 7 == 6
    return {
        "exchange": "binance", "exchange_symbol": symbol, "snapshot": n == 0,
        "bids": [{"price": p, "size": s} for p, s in bids],
        "asks": [{"price": p, "size": s} for p, s in asks],
        "exchange_us": None, "sequence": n, "sequence_from": None, "checksum": None,
        "verified": not ignored, "outcome": "ignored" if ignored else "verified",
        "reason": None, "expected": None, "received": None,
        "received_us": T0 + n * 100_000, "connection_id": "c", "position": n,
        "protocol": "binance-depth", "message_id": f"binance:{symbol}:c:{n}",
        "k2_version": "test", "depth": None,
    }  # fmt: skip


def silver_rows(value: dict[str, Any], partition: int, offset: int) -> list[dict[str, Any]]:
    """The silver.book_changes rows of one record, as the job writes them."""
    return [
        {
            **_row_base(value, partition, offset),
            "side": side,
            "level": index,
            "price": Decimal(level["price"]),
            "size": Decimal(level["size"]),
        }
        for side, key in (("bid", "bids"), ("ask", "asks"))
        for index, level in enumerate(value[key])
    ]


def _row_base(value: dict[str, Any], partition: int, offset: int) -> dict[str, Any]:
    return {
        "message_id": value["message_id"],
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "exchange_symbol": value["exchange_symbol"],
        "exchange_ts": None,
        "received_ts": datetime_from_micros(value["received_us"]),
        "is_snapshot": value["snapshot"],
        "sequence": value["sequence"],
        "verified": value["verified"],
        "outcome": value["outcome"],
        "depth": None,
        "protocol": "binance-depth",
        "kafka_topic": TOPIC,
        "kafka_partition": partition,
        "kafka_offset": offset,
        "silver_written_at": datetime_from_micros(T0),
    }


TOPIC = book_topic("binance", "test.api.book.")


def replay(values: list[dict[str, Any]]) -> OrderBook:
    book = OrderBook()
    for value in values:
        if value["outcome"] == "ignored":
            continue
        bids = [_level(lv["price"], lv["size"]) for lv in value["bids"]]
        asks = [_level(lv["price"], lv["size"]) for lv in value["asks"]]
        if value["snapshot"]:
            book.replace(bids, asks)
        else:
            book.update(bids, asks)
    return book


def _level(price: str, size: str) -> Level:
    return Level(Decimal(price), Decimal(size), price, size)


def test_the_book_stream_continues_silver_from_the_next_kafka_offset(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Silver holds the first 15 messages, Kafka all of them and more arrive while the client
    listens: the client gets the book of those 15, then exactly the later messages of its
    symbol (not another symbol's, not an ignored one), and its book equals the full replay."""
    private = settings.model_copy(
        update={
            "stack": settings.stack.model_copy(update={"home": tmp_path / "home"}),
            "kafka": settings.kafka.model_copy(update={"topic_prefix": "test.api.book."}),
            "exchanges": ("binance",),
            "api": ApiSettings(refresh_interval_s=0.2),
        }
    )
    TopicAdmin(private.kafka_config()).ensure(k2_topics(private.kafka, (), books=("binance",)))
    serialize = AvroSerializer(
        SchemaRegistryClient(private.registry_config()),
        schema_text("book_raw"),
        conf={"auto.register.schemas": True},
    )
    producer = Producer({**private.kafka_config(), "enable.idempotence": True})
    landed: dict[int, tuple[int, int]] = {}  # message n of BTCUSDT -> partition, offset

    def send(values: list[dict[str, Any]]) -> None:
        for value in values:

            def delivered(error: Any, message: Any, n: int = value["sequence"]) -> None:
                assert error is None, error
                if message.key() == b"BTCUSDT":
                    landed[n] = (message.partition(), message.offset())

            context = SerializationContext(TOPIC, MessageField.VALUE)
            producer.produce(
                TOPIC,
                key=value["exchange_symbol"].encode(),
                value=serialize(value, context),
                on_delivery=delivered,
            )
        assert producer.flush(30) == 0

    values = [record(n, "BTCUSDT") for n in range(30)]
    send(
        [
            v
            for pair in zip(values, (record(n, "ETHUSDT") for n in range(30)), strict=True)
            for v in pair
        ]
    )
    catalog = open_catalog(private.lake_access())
    ensure_namespaces(catalog)
    create_table(catalog, silver_book_changes())
    in_silver = [r for n in range(15) for r in silver_rows(values[n], *landed[n])]
    gold_rows.append(catalog, "silver.book_changes", in_silver)
    later = [record(n, "BTCUSDT") for n in range(30, 40)]

    with capture_logs(), TestClient(create_app(private)) as client:
        path = "/v1/stream/book?exchange=binance&symbol=BTC/USDT"
        with client.websocket_connect(path) as socket:
            first = socket.receive_json()
            send(later)
            updates = []
            while not updates or updates[-1]["offset"] < landed[39][1]:
                updates.append(socket.receive_json())

    assert first["type"] == "book" and first["offset"] == landed[14][1]
    expected_first = replay(values[:15])
    for side in ("bids", "asks"):
        got = [(Decimal(p), Decimal(s)) for p, s in first[side]]
        assert got == [(lv.price, lv.size) for lv in getattr(expected_first, side)], side
    sent = [n for n in range(15, 40) if (values + later)[n]["outcome"] != "ignored"]
    assert [u["offset"] for u in updates] == [landed[n][1] for n in sent]
    client_book = OrderBook()
    client_book.replace(
        [_level(p, s) for p, s in first["bids"]], [_level(p, s) for p, s in first["asks"]]
    )
    for update in updates:
        bids = [_level(p, s) for p, s in update["bids"]]
        asks = [_level(p, s) for p, s in update["asks"]]
        client_book.update(bids, asks)
    full = replay(values + later)
    for side in ("bids", "asks"):
        got = [(lv.price, lv.size) for lv in getattr(client_book, side)]
        assert got == [(lv.price, lv.size) for lv in getattr(full, side)], side
