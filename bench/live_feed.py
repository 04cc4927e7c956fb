"""The live stream's latency: raw records produced at a steady rate, Kafka's acknowledgement of
each beside the moment a WebSocket client of the API received it."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import time
from typing import Any

import websockets
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from k2.config import Settings
from k2.ingest.avro import ConfluentEncoder
from k2.schemas import schema_text
from k2.schemas.registry import register_value_schema
from k2.transport.topics import raw_topic

_TICK_S = 0.01


def _record(trade_id: int, now_us: int) -> dict[str, Any]:
    return {
        "exchange_symbol": "BTCUSDT", "event_type": "trade", "event_time": now_us,
        "trade_id": trade_id, "agg_trade_id": None, "first_trade_id": None,
        "last_trade_id": None, "price": f"64000.{trade_id % 10**8:08d}", "quantity": "0.01",
        "trade_time": now_us, "buyer_is_maker": trade_id % 2 == 0, "ignore_m": True,
        "time_unit": "MICROSECOND", "stream": "btcusdt@trade", "received_us": now_us,
        "connection_id": "bench", "position": trade_id, "protocol": "binance-trade",
        "snapshot": False, "message_id": f"binance:BTCUSDT:{trade_id}", "k2_version": "bench",
    }  # fmt: skip


def _produce(settings: Settings, rate: int, seconds: float, acks: dict[str, int]) -> float:
    """Produce ``rate`` records/s for ``seconds``, as the ingest does (its linger); the rate
    reached. Acknowledgement times (ns) go into ``acks`` by message_id."""
    topic = raw_topic("binance", settings.kafka.topic_prefix)
    registry = SchemaRegistryClient(settings.registry_config())
    encoder = ConfluentEncoder(
        "binance_raw", register_value_schema(registry, topic, schema_text("binance_raw"))
    )
    producer = Producer({**settings.kafka_config(), "linger.ms": settings.ingest.linger_ms,
                         "acks": "all", "enable.idempotence": True})  # fmt: skip

    def acked(message_id: str) -> Any:
        def done(error: Any, message: Any) -> None:
            if error is None:
                acks[message_id] = time.time_ns()

        return done

    first_id = time.time_ns() // 1000
    total = int(rate * seconds)
    started = time.perf_counter()
    for n in range(total):
        due = started + n / rate
        while (wait := due - time.perf_counter()) > 0:
            producer.poll(min(wait, _TICK_S))
        record = _record(first_id + n, time.time_ns() // 1000)
        producer.produce(
            topic,
            key=b"BTCUSDT",
            value=encoder.encode(record),
            on_delivery=acked(record["message_id"]),
        )
        producer.poll(0)
    elapsed = time.perf_counter() - started
    producer.flush(30)
    return total / elapsed


def _produce_into(settings: Settings, rate: int, seconds: float, sender: Any) -> None:
    acks: dict[str, int] = {}
    reached = _produce(settings, rate, seconds, acks)
    sender.send((acks, reached))


async def measure_live(settings: Settings, base: str, rate: int, seconds: float) -> dict[str, Any]:
    """Latency percentiles of acknowledged → received over one connection."""
    url = base.replace("http", "ws") + "/v1/stream/trades?exchange=binance&symbol=BTC/USDT"
    acks: dict[str, int] = {}
    received: dict[str, int] = {}
    reached: list[float] = []
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    async with websockets.connect(url, max_queue=None) as socket:
        # Its own process: the producer's encoding must not hold this client's interpreter.
        producer = context.Process(target=_produce_into, args=(settings, rate, seconds, sender))
        producer.start()
        deadline = time.monotonic() + seconds + 30
        total = int(rate * seconds)
        while len(received) < total and time.monotonic() < deadline:
            try:
                text = await asyncio.wait_for(socket.recv(), timeout=5)
            except TimeoutError:
                if not producer.is_alive():
                    break
                continue
            at = time.time_ns()
            message = json.loads(text)
            for trade in message.get("trades", ()):
                received[trade["message_id"]] = at
        if receiver.poll(60):
            acks, rate_reached = receiver.recv()
            reached.append(rate_reached)
        producer.join(60)
    latencies = sorted((received[k] - acks[k]) / 1e6 for k in received.keys() & acks.keys())
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "rate_asked_per_s": rate,
        "rate_reached_per_s": round(reached[0], 1) if reached else None,
        "produced": total,
        "received": len(received),
        "ack_to_client_p50_ms": round(quantiles[49], 2),
        "ack_to_client_p99_ms": round(quantiles[98], 2),
        "ack_to_client_max_ms": round(latencies[-1], 2) if latencies else None,
    }
