"""Ingest cost and speed into a real broker with ``acks=all``, beside the machine's ceiling.

A private stack runs in a temporary folder; the simulator runs as its own process (``k2 simulate``)
and the ingest in this process, exactly as ``k2 ingest`` builds it (uvloop included). Measured:

- throughput and CPU per protocol: the simulator asked for more than the ingest can take; trades
  acknowledged by Kafka per second over ``SECONDS``, and the ingest's CPU time per trade (this
  process: the ingest and librdkafka's threads, from ``time.process_time``), with the trades/s
  one core could carry at that cost when the source is not the limit;
- ceiling: librdkafka alone with the same producer settings, producing pre-encoded records of the
  size the ingest writes from a tight loop, no per-record callback object, one poll per 10,000;
  the ingest is reported as a fraction of it (measured rate, and per-core capacity);
- latency at a steady ``STEADY_RATE`` trades/s: receive to Kafka acknowledgement of every record,
  p50/p99/max (elsewhere: the ingest's own sample, one record per event-loop turn);
- every symbol: 2,000 Binance symbols at ``ALL_RATE`` trades/s: delivered/s, connections, RSS;
- lag with 1% of ids lost: how far behind the venue the live feed reads (now minus the exchange
  time of the newest trade received, sampled every 0.2 s) while REST fills the gaps.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import uvloop

from bench.services import private_settings, start_simulator
from k2.config import Settings
from k2.ingest.service import IngestService, adapter_for, feed_spec
from k2.observability.logging import configure_logging
from k2.observability.metrics import IngestMetrics, Metrics
from k2.stack.manager import Stack
from k2.transport.producer import DurableProducer, ProducerOptions
from k2.transport.topics import TopicAdmin, TopicSpec

MAX_RATE = 40_000  # what the simulator sustains beside the ingest on this machine
STEADY_RATE = 10_000
ALL_RATE = 20_000
SECONDS = 15.0
WARMUP_S = 4.0
CEILING_RECORDS = 600_000
_TWO = {"kraken": "XBT/USD,ETH/USD", "binance": "BTCUSDT,ETHUSDT"}


def _service(
    settings: Settings, exchange: str, urls: dict[str, str], lane: str, **section: Any
) -> IngestService:
    ingest = settings.ingest.model_copy(
        update={
            "source": "simulator",
            "simulator_url": urls["binance_rest"],
            "summary_interval_s": 60,
        }
    )
    if section:
        ingest = ingest.with_exchange(exchange, **section)
    # Each measurement has topics of its own: a new simulator starts its ids afresh.
    kafka = settings.kafka.model_copy(update={"topic_prefix": f"bench.{lane}."})
    configured = settings.model_copy(update={"ingest": ingest, "kafka": kafka})
    adapter = adapter_for(exchange, ingest)
    metrics = IngestMetrics(Metrics(f"bench-{exchange}"), exchange)
    return IngestService(configured, adapter, feed_spec(configured, adapter), metrics)


def _delivered(service: IngestService) -> int:
    return sum(c.delivered for c in service.state.symbols.values())


def _time_every_record(service: IngestService, latencies: list[float]) -> None:
    """Receive-to-acknowledged latency of every raw record (its Kafka timestamp is its receive
    time, in ms), not only the ingest's one sample per loop turn."""
    deliveries = service._deliveries
    counted = deliveries.tracked

    def timed(err: Any, msg: Any) -> None:
        counted(err, msg)
        if err is None:
            latencies.append(time.time() - msg.timestamp()[1] / 1000)

    deliveries.tracked = timed


async def _measure(service: IngestService, seconds: float, every_record: bool) -> dict[str, Any]:
    latencies: list[float] = []
    if every_record:
        _time_every_record(service, latencies)
    else:
        service._deliveries._observe_latency = latencies.append  # keep every sample
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.sleep(WARMUP_S)
    before, started, cpu = _delivered(service), time.monotonic(), time.process_time()
    first = len(latencies)
    lags: list[float] = []
    rss = 0
    while (elapsed := time.monotonic() - started) < seconds:
        await asyncio.sleep(0.2)
        newest = service._newest_us
        if newest is not None:
            lags.append(time.time() - newest / 1e6)
        rss = max(rss, psutil.Process().memory_info().rss)
    cpu_s = time.process_time() - cpu
    done = _delivered(service) - before
    window = latencies[first:]
    client = service._client
    connections = client.connections_open() if client is not None else 0
    stop.set()
    await task
    per_trade = cpu_s / max(1, done)
    return {
        "delivered_per_s": round(done / elapsed),
        "ingest_cpu_us_per_trade": round(per_trade * 1e6, 2),
        "capacity_per_core_per_s": round(1 / per_trade) if done else 0,
        "connections": connections,
        "rss_mb": round(rss / 2**20),
        "latency": _percentiles(window),
        "lag": _percentiles(lags),
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 2)

    return {"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 2)}


def _ceiling(settings: Settings, size: int) -> float:
    """librdkafka alone: pre-encoded records, tight loop, no callback object, rare polls."""
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
    send = producer.send
    started = time.monotonic()
    sent = 0
    while sent < CEILING_RECORDS:
        if send(topic, value, keys[sent & 1]):
            sent += 1
            if sent % 10_000 == 0:
                producer.poll(0)
        else:
            producer.poll(0.001)
    undelivered = producer.close(120)
    return (CEILING_RECORDS - undelivered) / (time.monotonic() - started)


def _run(
    service: IngestService, seconds: float = SECONDS, every_record: bool = False
) -> dict[str, Any]:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_measure(service, seconds, every_record))


def _with_simulator(
    home: Path, rate: int, kraken: str | None, binance: str | None, *extra: str
) -> Any:
    return start_simulator(rate, kraken, binance, 1_000_000, home, *extra)


def _scenarios(settings: Settings, home: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for exchange, name in (("kraken", "kraken-v2"), ("binance", "binance-trade")):
        kraken, binance = (_TWO["kraken"], "") if exchange == "kraken" else ("", _TWO["binance"])
        simulator, urls = _with_simulator(home, MAX_RATE, kraken, binance)
        try:
            result[f"throughput_{name}"] = _run(
                _service(settings, exchange, urls, "max" + exchange)
            )
        finally:
            simulator.terminate()
            simulator.wait(30)
        simulator, urls = _with_simulator(home, STEADY_RATE, kraken, binance)
        try:
            service = _service(settings, exchange, urls, "steady" + exchange)
            steady = _run(service, every_record=True)
            result[f"steady_{name}"] = {"requested_per_s": STEADY_RATE, **steady}
        finally:
            simulator.terminate()
            simulator.wait(30)
    simulator, urls = _with_simulator(home, ALL_RATE, "", None, "--skew", "1")
    try:
        service = _service(settings, "binance", urls, "all", symbols=("*",))
        result["every_symbol_binance"] = {"requested_per_s": ALL_RATE, **_run(service)}
    finally:
        simulator.terminate()
        simulator.wait(30)
    lossy = ("--lose-every", "100", "--lose-exchange", "binance", "--binance-weight-limit", "0")
    simulator, urls = _with_simulator(home, STEADY_RATE, "", _TWO["binance"], *lossy)
    try:
        service = _service(settings, "binance", urls, "lost")
        lost = _run(service, 30, every_record=True)
        result["lost_ids_1pct_binance"] = {"requested_per_s": STEADY_RATE, **lost}
    finally:
        simulator.terminate()
        simulator.wait(30)
    return result


def run() -> dict[str, Any]:
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="k2-bench-ingest-") as folder:
        home = Path(folder)
        settings = private_settings(home)
        stack = Stack(settings)
        stack.up()
        result: dict[str, Any] = {"acks": "all", "requested_max_per_s": MAX_RATE}
        try:
            result.update(_scenarios(settings, home))
            ceiling = _ceiling(settings, 185)
            result["ceiling"] = {"record_bytes": 185, "records_per_s": round(ceiling)}
            for key in [k for k in result if k.startswith("throughput_")]:
                measured = result[key]
                measured["fraction_of_ceiling"] = round(measured["delivered_per_s"] / ceiling, 3)
                capacity = measured["capacity_per_core_per_s"]
                measured["capacity_fraction_of_ceiling"] = round(capacity / ceiling, 3)
        finally:
            stack.down()
    return result
