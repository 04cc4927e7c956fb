"""Live order books: one symbol's book, then every message that changes it, on a WebSocket.

The first message is the book as ``GET /v1/book`` rebuilds it from ``silver.book_changes`` now,
every level (``{"type": "book", ...}``), with the Kafka position of the last message it holds.
The client's own consumer then reads the symbol's partition of the book topic from the next
offset, so the updates join that book with nothing missed and nothing applied twice, whatever
Silver's lag. Each update is ``{"type": "update", "snapshot": ..., "bids": [[price, size], ...],
"asks": ..., "depth": ..., "verified": ..., "received": ..., "offset": ...}`` with the levels as
the exchange sent them: a snapshot replaces the book, a size of 0 removes its level, and after
each message the book is cut to ``depth`` levels a side where that is not null (Kraken, Bybit).
Messages the capture ignored (older than their snapshot) are not sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.serialization import MessageField, SerializationContext
from fastapi import WebSocket, WebSocketDisconnect

from k2.lake.books import BookAt
from k2.lake.export import time_text

_BATCH = 500
_POLL_S = 0.2


def book_message(book: BookAt) -> str:
    """The first message: the whole book, where it stands in Kafka, its depth."""
    return json.dumps(
        {
            "type": "book",
            **book.document(),
            "depth": book.depth,
            "offset": book.position.offset,
        }
    )


def update_message(record: Mapping[str, Any], offset: int) -> str | None:
    """One book record as an update, or None for one the capture ignored."""
    if record["outcome"] == "ignored":
        return None
    return json.dumps(
        {
            "type": "update",
            "snapshot": record["snapshot"],
            "bids": [[level["price"], level["size"]] for level in record["bids"]],
            "asks": [[level["price"], level["size"]] for level in record["asks"]],
            "depth": record.get("depth"),
            "verified": record["verified"],
            "received": time_text(record["received_us"]),
            "offset": offset,
        }
    )


async def stream_book(
    websocket: WebSocket, book: BookAt, kafka: Mapping[str, str], registry: Mapping[str, str]
) -> None:
    """Send ``book`` (already accepted ``websocket``), then every later message of its symbol
    until the client leaves."""
    from confluent_kafka.schema_registry import (  # noqa: PLC0415 - loads with the first book client
        SchemaRegistryClient,
    )
    from confluent_kafka.schema_registry.avro import (  # noqa: PLC0415 - loads with the first book client
        AvroDeserializer,
    )

    topic, partition, offset, key = book.position
    consumer = Consumer(
        {
            **kafka,
            "group.id": f"k2-api-book-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "fetch.wait.max.ms": 10,
            "log_level": 3,
        }
    )
    decode = AvroDeserializer(SchemaRegistryClient(dict(registry)))
    context = SerializationContext(topic, MessageField.VALUE)
    consumer.assign([TopicPartition(topic, partition, offset + 1)])

    async def client_gone() -> None:
        with suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()

    lock = threading.Lock()  # the consumer is closed only between two reads

    def consume() -> list[Any]:
        with lock:
            found: list[Any] = consumer.consume(_BATCH, _POLL_S)
            return found

    def close() -> None:
        with lock:
            consumer.close()

    watcher = asyncio.create_task(client_gone())
    try:
        await websocket.send_text(book_message(book))
        while not watcher.done():
            messages = await asyncio.to_thread(consume)
            for message in messages:
                if message.error() is not None or message.value() is None:
                    continue
                if message.key() != key.encode():
                    continue
                text = update_message(decode(message.value(), context), message.offset())
                if text is not None:
                    await websocket.send_text(text)
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        watcher.cancel()
        threading.Thread(target=close, name="book-stream-close", daemon=True).start()
