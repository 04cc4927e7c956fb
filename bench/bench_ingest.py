"""Ingest throughput and latency into a real broker with ``acks=all``, and the machine's ceiling.

A private stack runs in a temporary folder; the simulator runs as its own process (``k2 simulate``)
and the ingest in this process, exactly as ``k2 ingest`` builds it. Three measurements:

- throughput: the simulator asked for ``MAX_RATE`` trades/s per venue (its rate is spread over
  both venues' two symbols each); trades acknowledged by Kafka per second over ``SECONDS``, per
  venue protocol. The ingest and the simulator share the machine's cores, and asking the
  simulator for much more than it can render only slows it, so the rate is kept near what one
  core of it sends;
- latency at a steady ``STEADY_RATE`` trades/s per venue: from receiving a trade's frame to Kafka
  acknowledging its record (the delivery callback), p50/p99/max;
- CPU cost: the ingest's CPU time per trade in the throughput run (this process: the ingest and
  librdkafka's threads), and the trades/s one core could carry at that cost when the source is
  not the limit (the simulator shares the machine and caps what it can send);
- ceiling: librdkafka alone (the same producer settings) producing pre-encoded records of the
  size the ingest writes, no parsing, as fast as it accepts them; the ingest is reported as a
  fraction of it.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k2.ingest.venues import venue_ingest

from bench.services import private_settings, start_simulator
from k2.config import Settings
from k2.ingest.service import IngestService, feed_spec
from k2.observability.logging import configure_logging
from k2.observability.metrics import IngestMetrics, Metrics
from k2.stack.manager import Stack
from k2.transport.producer import DurableProducer, ProducerOptions
from k2.transport.topics import TopicAdmin, TopicSpec

MAX_RATE = 40_000
STEADY_RATE = 10_000
SECONDS = 15.0
WARMUP_S = 3.0
CEILING_RECORDS = 500_000
_SYMBOLS = ("XBT/USD,ETH/USD", "BTCUSDT,ETHUSDT")


class _Timed(IngestService):
    """The ingest, keeping each delivery's receive-to-acknowledged latency."""

    latencies: list[float]

    def _on_delivery(self, msg: Any, err: Any, opaque: object) -> None:
        super()._on_delivery(msg, err, opaque)
        if err is None and isinstance(opaque, tuple):
            self.latencies.append(time.time() - opaque[1] / 1e6)


@dataclass(frozen=True)
class Measured:
    per_s: float  # trades acknowledged by Kafka per second
    latencies: list[float]  # receive-to-acknowledged, seconds
    cpu_s_per_trade: float  # CPU time of this process (ingest and librdkafka threads) per trade

    @property
    def capacity_per_core(self) -> int:
        """Trades/s one core could carry at this CPU cost, were the source not the limit."""
        return round(1 / self.cpu_s_per_trade) if self.cpu_s_per_trade else 0


async def _measure(
    settings: Settings, exchange: str, simulator_url: str, seconds: float, lane: str
) -> Measured:
    ingest = settings.ingest.model_copy(
        update={"source": "simulator", "simulator_url": simulator_url, "summary_interval_s": 60}
    )
    # Each measurement has topics of its own: a new simulator starts its ids afresh.
    kafka = settings.kafka.model_copy(update={"topic_prefix": f"bench.{lane}."})
    configured = settings.model_copy(update={"ingest": ingest, "kafka": kafka})
    venue = venue_ingest(exchange, ingest)
    service = _Timed(
        configured,
        venue,
        feed_spec(configured, venue),
        IngestMetrics(Metrics(f"bench-{exchange}"), exchange),
    )
    service.latencies = []
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.sleep(WARMUP_S)
    before, started, cpu = len(service.latencies), time.monotonic(), time.process_time()
    await asyncio.sleep(seconds)
    after, elapsed = len(service.latencies), time.monotonic() - started
    cpu_s = time.process_time() - cpu
    window = service.latencies[before:after]
    stop.set()
    await task
    return Measured((after - before) / elapsed, window, cpu_s / max(1, after - before))


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 2)

    return {"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 2)}


def _record_size(settings: Settings, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition  # noqa: PLC0415

    consumer = Consumer({**settings.kafka_config(), "group.id": "bench-size"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, max(low, high - 1000))])
        sizes = []
        deadline = time.monotonic() + 20
        while len(sizes) < 500 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and msg.value():
                sizes.append(len(msg.value()))
    finally:
        consumer.close()
    return round(sum(sizes) / len(sizes)) if sizes else 150


def _ceiling(settings: Settings, size: int) -> float:
    topic = "bench.ceiling"
    TopicAdmin(settings).ensure([TopicSpec(topic, settings.kafka.topic_partitions, 1)])
    producer = DurableProducer(
        settings.kafka_config(),
        ProducerOptions(
            linger_ms=settings.ingest.linger_ms,
            queue_max_messages=settings.ingest.queue_max_messages,
        ),
    )
    value = bytes(size)
    keys = [b"BTCUSDT", b"ETHUSDT"]
    started = time.monotonic()
    sent = 0
    while sent < CEILING_RECORDS:
        if producer.try_produce(topic, value, keys[sent % 2]):
            sent += 1
    undelivered = producer.close(120)
    elapsed = time.monotonic() - started
    return (CEILING_RECORDS - undelivered) / elapsed


def run() -> dict[str, Any]:
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="k2-bench-ingest-") as folder:
        home = Path(folder)
        settings = private_settings(home)
        stack = Stack(settings)
        stack.up()
        result: dict[str, Any] = {"acks": "all", "requested_per_venue_per_s": MAX_RATE}
        try:
            simulator, urls = start_simulator(2 * MAX_RATE, *_SYMBOLS, 2_000_000, home)
            try:
                for exchange, name in (("kraken", "kraken-v2"), ("binance", "binance-trade")):
                    measured = asyncio.run(
                        _measure(settings, exchange, urls["binance_rest"], SECONDS, "max")
                    )
                    result[f"throughput_{name}"] = {
                        "delivered_per_s": round(measured.per_s),
                        "ingest_cpu_us_per_trade": round(measured.cpu_s_per_trade * 1e6, 1),
                        "capacity_per_core_per_s": measured.capacity_per_core,
                    }
            finally:
                simulator.terminate()
                simulator.wait(30)
            simulator, urls = start_simulator(2 * STEADY_RATE, *_SYMBOLS, 2_000_000, home)
            try:
                for exchange, name in (("kraken", "kraken-v2"), ("binance", "binance-trade")):
                    measured = asyncio.run(
                        _measure(settings, exchange, urls["binance_rest"], SECONDS, "steady")
                    )
                    result[f"steady_{name}"] = {
                        "requested_per_s": STEADY_RATE,
                        "delivered_per_s": round(measured.per_s),
                        **_percentiles(measured.latencies),
                    }
            finally:
                simulator.terminate()
                simulator.wait(30)
            size = _record_size(settings, "bench.max.market.crypto.trades.binance.raw")
            ceiling = _ceiling(settings, size)
            result["ceiling"] = {"record_bytes": size, "records_per_s": round(ceiling)}
            for key in [k for k in result if k.startswith("throughput_")]:
                measured_rate = result[key]["delivered_per_s"]
                capacity = result[key]["capacity_per_core_per_s"]
                result[key]["fraction_of_ceiling"] = round(measured_rate / ceiling, 3)
                result[key]["capacity_fraction_of_ceiling"] = round(capacity / ceiling, 3)
        finally:
            stack.down()
    return result
