"""Ingest cost and speed into a real broker with ``acks=all``, beside the machine's ceiling.

A private stack runs in a temporary folder; the simulator runs as its own process (``k2 simulate``,
without a ledger) and the ingest in this process, exactly as ``k2 ingest`` builds it (uvloop
included). CPU is this process's (the ingest and librdkafka's threads, ``time.process_time``).

- full speed, the source not the limit: the ingest subscribes to a simulator that sends nothing,
  and frames rendered in advance by the exchanges' wire renderers (``FULL_SPEED_TRADES`` trades of
  two symbols, ids in sequence) are handed to its feed client's frame handler as fast as it
  takes them: everything the ingest does per frame except the socket read. Trades acknowledged
  by Kafka per second and CPU per trade, as a fraction of the ceiling; the median of
  ``FULL_SPEED_ROUNDS`` rounds over the exchanges in turn (single runs vary by ±15 % here);
- throughput over the socket: the simulator asked for ``MAX_RATE`` trades/s; acknowledged trades
  per second over ``SECONDS``, CPU per trade and the trades/s one core could carry at that cost.
  The simulator and the broker share the machine's cores with the ingest here;
- ceiling: librdkafka alone with the same producer settings, producing pre-encoded records of the
  size the ingest writes from a tight loop, no per-record callback object, one poll per 10,000;
- latency at a steady ``STEADY_RATE`` trades/s: receive to Kafka acknowledgement of every record
  (from its Kafka timestamp, taken while its frame is handled), p50/p99/max, and the ingest's
  own exact sample (one record per event-loop turn, from the frame's receive time);
- every symbol: 2,000 Binance symbols at ``ALL_RATE`` trades/s: delivered/s, connections, RSS;
- lag with 1% of ids lost: how far behind the exchange the live feed reads (now minus the exchange
  time of the newest trade received, sampled every 0.2 s) while REST fills the gaps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
import uvloop

from bench.services import private_settings, start_simulator
from k2.config import IngestSettings, Settings
from k2.exchanges.base import Envelope
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.bybit import wire as bybit_wire
from k2.exchanges.coinbase import wire as coinbase_wire
from k2.exchanges.factory import adapter_for, feed_spec
from k2.exchanges.kraken import wire as kraken_wire
from k2.exchanges.kraken.parse import parse_frame
from k2.exchanges.okx import wire as okx_wire
from k2.ingest.avro import ConfluentEncoder
from k2.ingest.service import IngestService
from k2.observability.logging import configure_logging
from k2.observability.metrics import IngestMetrics, Metrics
from k2.stack.manager import Stack
from k2.transport.producer import DurableProducer, ProducerOptions
from k2.transport.topics import TopicAdmin, TopicSpec

# asked of the simulator beside the ingest
MAX_RATE = {
    "kraken": 150_000,
    "binance": 100_000,
    "coinbase": 150_000,
    "okx": 100_000,
    "bybit": 100_000,
}
STEADY_RATE = 10_000
ALL_RATE = 20_000
SECONDS = 15.0
WARMUP_S = 4.0
FULL_SPEED_TRADES = {
    "kraken": 1_000_000,
    "binance": 300_000,
    "coinbase": 1_000_000,
    "okx": 300_000,
    "bybit": 500_000,
}
FULL_SPEED_ROUNDS = 3  # the median is reported
CEILING_RECORDS = 600_000
_TWO = {
    "kraken": "XBT/USD,ETH/USD",
    "binance": "BTCUSDT,ETHUSDT",
    "coinbase": "BTC-USD,ETH-USD",
    "okx": "BTC-USDT,ETH-USDT",
    "bybit": "BTCUSDT,ETHUSDT",
}
_NAMES = {
    "kraken": "kraken-v2",
    "binance": "binance-trade",
    "coinbase": "coinbase-advanced",
    "okx": "okx-trades-all",
    "bybit": "bybit-spot",
}
# Trades per Bybit push, in turn: most spot pushes carry one trade, a sweep of the book several.
_BYBIT_PUSH = (1, 1, 1, 2, 2, 3, 5, 8, 13)


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
    return IngestService(configured, adapter, feed_spec(configured.ingest, adapter), metrics)


@contextlib.contextmanager
def _simulator(
    home: Path, rate: int, exchange: str | None, *extra: str
) -> Iterator[dict[str, str]]:
    """``k2 simulate`` listing the two symbols of ``exchange`` (None: Binance's universe)."""
    if exchange is None:
        kraken, binance = "", None
    else:
        kraken = _TWO["kraken"] if exchange == "kraken" else ""
        binance = _TWO["binance"] if exchange == "binance" else ""
        if exchange not in ("kraken", "binance"):
            extra = (*extra, f"--{exchange}-symbols", _TWO[exchange])
    process, urls = start_simulator(rate, kraken, binance, 1_000_000, home, *extra)
    try:
        yield urls
    finally:
        process.terminate()
        process.wait(30)


def _delivered(service: IngestService) -> int:
    return sum(c.delivered for c in service.state.symbols.values())


def _time_every_record(service: IngestService, latencies: list[float]) -> None:
    """Receive-to-acknowledged latency of every raw record from its Kafka timestamp (ms), set
    when the record was produced, while its frame was being handled."""
    deliveries = service._deliveries
    counted = deliveries.tracked

    def timed(err: Any, msg: Any) -> None:
        counted(err, msg)
        if err is None:
            latencies.append(time.time() - msg.timestamp()[1] / 1000)

    deliveries.tracked = timed


async def _measure(service: IngestService, seconds: float, every_record: bool) -> dict[str, Any]:
    latencies: list[float] = []
    sampled: list[float] = []
    if every_record:
        _time_every_record(service, latencies)
    service._deliveries._observe_latency = sampled.append  # the ingest's own samples, all
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.sleep(WARMUP_S)
    before, started, cpu = _delivered(service), time.monotonic(), time.process_time()
    first, first_sampled = len(latencies), len(sampled)
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
    client = service._client
    connections = client.connections_open() if client is not None else 0
    stop.set()
    await task
    per_trade = cpu_s / max(1, done)
    measured = {
        "delivered_per_s": round(done / elapsed),
        "ingest_cpu_us_per_trade": round(per_trade * 1e6, 2),
        "capacity_per_core_per_s": round(1 / per_trade) if done else 0,
        "connections": connections,
        "rss_mb": round(rss / 2**20),
        "latency_sampled": _percentiles(sampled[first_sampled:]),
        "lag": _percentiles(lags),
    }
    if every_record:
        measured["latency"] = _percentiles(latencies[first:])
    return measured


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 2)

    return {"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 2)}


def _kraken_frames(trades: int) -> list[str]:
    """v2 frames of 100 trades, the two symbols in turn, ids from 1 in sequence per symbol."""
    frames = []
    for index in range(trades // 100):
        symbol, first = ("BTC/USD", "ETH/USD")[index % 2], (index // 2) * 100 + 1
        batch = [
            kraken_wire.v2_trade_fields(
                symbol,
                ("buy", "sell")[n % 2],
                f"{65000 + n}.{index % 10}",
                f"0.{1000 + n}",
                ("limit", "market")[n % 2],
                first + n,
                kraken_wire.format_timestamp_v2(1_700_000_000_000_000 + index * 100 + n),
            )
            for n in range(100)
        ]
        frames.append(kraken_wire.render_v2_trades(batch, "update"))
    return frames


def _binance_frames(trades: int) -> list[str]:
    """One ``@trade`` payload per frame, the two symbols in turn, ids from 1 in sequence."""
    frames = []
    for index in range(trades):
        symbol = ("BTCUSDT", "ETHUSDT")[index % 2]
        fields = binance_wire.trade_fields(
            symbol, index // 2 + 1, f"{65000 + index % 500}.10000000", "0.00120000",
            1_700_000_000_000_000 + index, index % 3 == 0,
        )  # fmt: skip
        frames.append(binance_wire.render_trade(fields, symbol.lower() + "@trade"))
    return frames


def _coinbase_frames(trades: int) -> list[str]:
    """``market_trades`` messages of 100 trades (the newest first, as Coinbase sends them), the
    two products in turn, ids from 1 in sequence per product. Their ``sequence_num`` starts far
    above what the live connection sent before (one jump, then in order)."""
    frames = []
    for index in range(trades // 100):
        product, first = ("BTC-USD", "ETH-USD")[index % 2], (index // 2) * 100 + 1
        batch = [
            coinbase_wire.trade_fields(
                first + n,
                product,
                f"{65000 + n}.{index % 10}",
                f"0.{1000 + n}",
                ("BUY", "SELL")[n % 2],
                coinbase_wire.format_time(1_700_000_000_000_000 + index * 100 + n),
            )
            for n in reversed(range(100))
        ]
        stamp = coinbase_wire.format_timestamp(1_700_000_000_000_000_000 + index * 100_000)
        frames.append(coinbase_wire.render_market_trades(batch, "update", 10**9 + index, stamp))
    return frames


def _okx_frames(trades: int) -> list[str]:
    """One ``trades-all`` push of one trade per frame, the two instruments in turn, ids from 1."""
    frames = []
    for index in range(trades):
        symbol = ("BTC-USDT", "ETH-USDT")[index % 2]
        fields = okx_wire.trade_fields(
            symbol, index // 2 + 1, f"{65000 + index % 500}.1", "0.0012",
            ("buy", "sell")[index % 2], 1_700_000_000_000 + index // 10,
        )  # fmt: skip
        frames.append(okx_wire.render_trades(okx_wire.ALL_TRADES, symbol, [fields]))
    return frames


def _bybit_frames(trades: int) -> list[str]:
    """Spot pushes of two symbols, ids from one counter shared by both, sizes of
    :data:`_BYBIT_PUSH` in turn."""
    frames: list[str] = []
    made, index = 0, 0
    while made < trades:
        size = min(_BYBIT_PUSH[index % len(_BYBIT_PUSH)], trades - made)
        symbol = ("BTCUSDT", "ETHUSDT")[index % 2]
        batch = [_bybit_fields(symbol, made + n, made) for n in range(size)]
        frames.append(bybit_wire.render_trades(batch))
        made, index = made + size, index + 1
    return frames


def _bybit_fields(symbol: str, n: int, push: int) -> dict[str, Any]:
    """The ``n``-th trade of the run, in the push that starts at trade ``push``."""
    return bybit_wire.trade_fields(
        symbol, str(2_290_000_001_200_000_000 + n), f"{77000 + n % 500}.{n % 10}",
        f"0.{1000 + n % 9000:06d}", 1_700_000_000_000 + n // 10, ("Buy", "Sell")[n % 2],
        113_508_069_853 + n, 1_700_000_000_000 + push // 10,
    )  # fmt: skip


def _frames(exchange: str, trades: int) -> list[str]:
    """Frames of two symbols as the exchange sends them, ids from 1 in sequence per symbol."""
    makers = {
        "kraken": _kraken_frames,
        "binance": _binance_frames,
        "coinbase": _coinbase_frames,
        "okx": _okx_frames,
        "bybit": _bybit_frames,
    }
    return makers[exchange](trades)


async def _feed_from_memory(service: IngestService, frames: list[str], trades: int) -> Any:
    """Hand ``frames`` to the running ingest's frame handler; CPU and time until acknowledged."""
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    while service._client is None or not any(lane.connected for lane in service._client.lanes):
        await asyncio.sleep(0.05)
    client = service._client
    lane = client.lanes[0]
    handle, deliveries = client._frame, service._deliveries
    started, cpu = time.monotonic(), time.process_time()
    for position, text in enumerate(frames):
        if deliveries.blocked:
            await deliveries.wait_ready()
        handle(lane, lane.conn, text, time.time_ns() // 1000, position)
        if position % 20 == 19:
            await asyncio.sleep(0)  # let delivery reports in, as between socket reads
    while _delivered(service) < trades and time.monotonic() - started < 120:
        await asyncio.sleep(0.005)
    elapsed, cpu_s, done = (
        time.monotonic() - started,
        time.process_time() - cpu,
        _delivered(service),
    )
    stop.set()
    await task
    return {
        "delivered_per_s": round(done / elapsed),
        "ingest_cpu_us_per_trade": round(cpu_s / max(1, done) * 1e6, 2),
        "trades": done,
    }


def _full_speed(settings: Settings, home: Path, exchange: str, lane: str) -> dict[str, Any]:
    trades = FULL_SPEED_TRADES[exchange]
    frames = _frames(exchange, trades)
    with _simulator(home, 0, exchange) as urls:
        service = _service(settings, exchange, urls, lane)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            measured: dict[str, Any] = runner.run(_feed_from_memory(service, frames, trades))
    return measured


def _full_speeds(settings: Settings, home: Path, exchanges: Sequence[str]) -> dict[str, Any]:
    """Each exchange's full-speed figures, :data:`FULL_SPEED_ROUNDS` times with the exchanges
    in turn (a slow moment of the machine falls on all of them), as the median run; every
    round's CPU per trade is kept beside it. Each run has topics of its own: a run on the
    topics of the one before would resume from its ids and drop every trade as a replay."""
    runs: dict[str, list[dict[str, Any]]] = {exchange: [] for exchange in exchanges}
    for index in range(FULL_SPEED_ROUNDS):
        for exchange in exchanges:
            lane = f"full{exchange}{index}"
            runs[exchange].append(_full_speed(settings, home, exchange, lane))
    result = {}
    for exchange, measured in runs.items():
        ordered = sorted(measured, key=lambda run: run["ingest_cpu_us_per_trade"])
        result[f"full_speed_{_NAMES[exchange]}"] = {
            **ordered[len(ordered) // 2],
            "rounds_us_per_trade": [run["ingest_cpu_us_per_trade"] for run in measured],
        }
    return result


def _ceiling(settings: Settings, size: int) -> float:
    """librdkafka alone: pre-encoded records, tight loop, no callback object, rare polls."""
    topic = "bench.ceiling"
    TopicAdmin(settings.kafka_config()).ensure(
        [TopicSpec(topic, settings.kafka.topic_partitions, 1)]
    )
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


def _scenarios(settings: Settings, home: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}
    result.update(_full_speeds(settings, home, list(_NAMES)))
    for exchange, name in _NAMES.items():
        with _simulator(home, MAX_RATE[exchange], exchange) as urls:
            measured = _run(_service(settings, exchange, urls, "max" + exchange))
            result[f"throughput_{name}"] = {"requested_per_s": MAX_RATE[exchange], **measured}
        with _simulator(home, STEADY_RATE, exchange) as urls:
            service = _service(settings, exchange, urls, "steady" + exchange)
            steady = _run(service, every_record=True)
            result[f"steady_{name}"] = {"requested_per_s": STEADY_RATE, **steady}
    with _simulator(home, ALL_RATE, None, "--skew", "1") as urls:
        service = _service(settings, "binance", urls, "all", symbols=("*",))
        result["every_symbol_binance"] = {"requested_per_s": ALL_RATE, **_run(service)}
    lossy = ("--lose-every", "100", "--lose-exchange", "binance", "--binance-weight-limit", "0")
    with _simulator(home, STEADY_RATE, "binance", *lossy) as urls:
        lost = _run(_service(settings, "binance", urls, "lost"), 30, every_record=True)
        result["lost_ids_1pct_binance"] = {"requested_per_s": STEADY_RATE, **lost}
    return result


def _record_bytes() -> int:
    """The size of a Kraken v2 raw record as the ingest writes it (Confluent framing included)."""
    adapter = adapter_for("kraken", IngestSettings())
    envelope = Envelope(time.time_ns() // 1000, "0123456789abcdef", 12345, "kraken-v2")
    (raw, *_) = parse_frame(_frames("kraken", 100)[0], envelope).trades
    values = adapter.record_values(raw, adapter.message_id(raw), "0.1.0")
    return len(
        ConfluentEncoder(adapter.schema_name, 1, adapter.record_fields).encode_values(values)
    )


def _with_stack(measure: Callable[[Settings, Path], dict[str, Any]]) -> dict[str, Any]:
    """``measure`` on a private stack, then the ceiling in the same run, and each full-speed or
    throughput figure as a fraction of it."""
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="k2-bench-ingest-") as folder:
        home = Path(folder)
        settings = private_settings(home)
        stack = Stack(settings)
        stack.up()
        result: dict[str, Any] = {"acks": "all"}
        try:
            result.update(measure(settings, home))
            size = _record_bytes()
            ceiling = _ceiling(settings, size)
            result["ceiling"] = {"record_bytes": size, "records_per_s": round(ceiling)}
            for key in [k for k in result if k.startswith(("throughput_", "full_speed_"))]:
                measured = result[key]
                measured["fraction_of_ceiling"] = round(measured["delivered_per_s"] / ceiling, 3)
                capacity = 1e6 / measured["ingest_cpu_us_per_trade"]
                measured["capacity_fraction_of_ceiling"] = round(capacity / ceiling, 3)
        finally:
            stack.down()
    return result


def run() -> dict[str, Any]:
    return _with_stack(_scenarios)


def run_full_speed(exchanges: Sequence[str]) -> dict[str, Any]:
    """Only the full-speed figures of ``exchanges``, beside the ceiling, with each one's CPU per
    trade relative to Kraken v2's when Kraken is among them."""

    def measure(settings: Settings, home: Path) -> dict[str, Any]:
        return _full_speeds(settings, home, exchanges)

    result = _with_stack(measure)
    kraken = result.get(f"full_speed_{_NAMES['kraken']}")
    for exchange in exchanges:
        measured = result[f"full_speed_{_NAMES[exchange]}"]
        if kraken is not None and exchange != "kraken":
            ratio = measured["ingest_cpu_us_per_trade"] / kraken["ingest_cpu_us_per_trade"]
            measured["cpu_per_trade_vs_kraken_v2"] = round(ratio, 2)
    return result


if __name__ == "__main__":  # python -m bench.bench_ingest kraken coinbase okx
    print(json.dumps(run_full_speed(sys.argv[1:] or list(_NAMES)), indent=2))
