"""The streaming job of every layer on this machine (Spark local mode, default settings).

Three measurements, each on a private stack (Kafka broker and registry) in a temporary folder:

- **throughput**: a raw Kraken topic pre-filled with ``RECORDS`` valid trades (Avro in the
  Confluent wire format, as the ingest writes them) is streamed through Bronze, Silver, Gold and
  the bars; rows/s into ``gold.trades`` is the records over the time from the query's start to
  the commit of the micro-batch holding the last of them. Beside it, in the same run, the limit
  it is measured against: a plain Spark copy of the same topic's bytes into an Iceberg table.
- **freshness**: a producer writes ``RATE`` trades/s for ``FRESH_SECONDS``, each with its
  exchange time set to the moment it is produced; a trade is visible once the micro-batch holding
  it has committed its ``gold.trades`` rows and its 1-minute bar (the batch's report says when:
  ``visible_at``); freshness is that moment minus the trade's exchange time.
- **cost**: ``k2 run --source simulator`` (every process: stack services, simulator, ingests,
  streaming job, API) at the simulator's default rate; CPU (cores) and RSS summed over its
  process tree over ``COST_SECONDS`` after a warm-up in which Gold gets its first rows; with two
  exchanges, with every exchange, and with every exchange's order book captured too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from bench.services import private_settings
from k2.config import Settings, revised
from k2.exchanges import EXCHANGE_NAMES
from k2.exchanges.kraken import wire
from k2.ingest.avro import ConfluentEncoder
from k2.jobs.service import service_setup
from k2.jobs.session import build_session
from k2.jobs.stream import start_stream
from k2.jobs.supervisor import stop_between_batches
from k2.lake.catalog import ensure_namespaces, open_catalog
from k2.schemas import schema_text
from k2.schemas.registry import register_value_schema
from k2.stack.manager import Stack, stack_environment
from k2.stack.ports import free_port
from k2.transport.topics import TopicAdmin, k2_topics, raw_topic

RECORDS = 1_000_000
RATE = 5_000
FRESH_SECONDS = 60.0
COST_SECONDS = 60.0
WARM_UP_S = 240.0
SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD", "DOGE/USD")


def _record(i: int, exchange_us: int) -> dict[str, Any]:
    """A valid Kraken v2 raw record, trade id ``i``, matched at ``exchange_us``."""
    symbol = SYMBOLS[i % len(SYMBOLS)]
    return {
        "exchange_symbol": symbol,
        "price": f"{60000 + i % 5000}.{i % 100:02d}",
        "side": "buy" if i % 2 else "sell",
        "volume": None,
        "time": None,
        "order_type": None,
        "misc": None,
        "qty": f"0.{i % 10**8 + 1:08d}",
        "ord_type": "limit",
        "trade_id": i,
        "timestamp": wire.format_timestamp_v2(exchange_us),
        "received_us": exchange_us + 1_000,
        "connection_id": "bench",
        "position": i,
        "protocol": "kraken-v2",
        "occurrence": 0,
        "snapshot": False,
        "message_id": f"kraken:{symbol}:{i}",
        "k2_version": "bench",
    }


def _producer(settings: Settings) -> Producer:
    return Producer(
        {
            **settings.kafka_config(),
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )


def _prefill(settings: Settings, topic: str, encode: ConfluentEncoder, count: int) -> float:
    producer = _producer(settings)
    started = time.perf_counter()
    base = time.time_ns() // 1000 - 3_600_000_000  # the last hour
    for i in range(count):
        value = encode.encode(_record(i, base + i * 3_000))
        while True:
            try:
                producer.produce(topic, key=SYMBOLS[i % len(SYMBOLS)].encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(120)
    return time.perf_counter() - started


def _plain_copy(spark: Any, settings: Settings, topic: str) -> dict[str, Any]:
    """The same topic's records, bytes only, into an Iceberg table: what one scan and one
    commit cost, without decoding or any layer."""
    spark.sql(
        "CREATE TABLE IF NOT EXISTS k2.bronze.plain_copy (key binary, value binary) USING iceberg"
    )
    started = time.perf_counter()
    frame = (
        spark.read.format("kafka")
        .options(
            **{
                "kafka.bootstrap.servers": settings.kafka_bootstrap,
                "subscribe": topic,
                "startingOffsets": "earliest",
            }
        )
        .load()
        .select("key", "value")
    )
    frame.writeTo("k2.bronze.plain_copy").append()
    elapsed = time.perf_counter() - started
    return {"rows_per_s": round(RECORDS / elapsed), "elapsed_s": round(elapsed, 1)}


def _throughput(spark: Any, settings: Settings, topic: str) -> dict[str, Any]:
    reports: list[Any] = []
    catalog = open_catalog(settings.lake_access())
    started = time.perf_counter()
    query, _ = start_stream(spark, settings, on_commit=reports.append)
    try:
        while sum(o + 1 for r in reports for o in r.last_offsets.get(topic, {}).values()) < RECORDS:
            if not query.isActive:
                raise RuntimeError(f"query stopped: {query.exception()}")
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
    finally:
        stop_between_batches(query, 120)
    rows = catalog.load_table("gold.trades").scan().to_arrow().num_rows
    steps: dict[str, float] = {}
    for report in reports:
        for step, seconds in report.steps.items():
            steps[step] = steps.get(step, 0.0) + seconds
    return {
        "records": RECORDS,
        "gold_rows": rows,
        "rows_per_s": round(RECORDS / elapsed),
        "elapsed_s": round(elapsed, 1),
        "batches": len([r for r in reports if r.rows]),
        "seconds_per_step": {step: round(s, 1) for step, s in sorted(steps.items())},
    }


def _freshness(
    spark: Any, settings: Settings, topic: str, encode: ConfluentEncoder
) -> dict[str, Any]:
    produced: list[tuple[int, int, float]] = []  # partition, offset, exchange time (s)
    committed: list[tuple[float, dict[str, dict[int, int]]]] = []
    stop = threading.Event()

    def produce() -> None:
        producer = _producer(settings)
        started = time.perf_counter()
        sent = 0
        while not stop.is_set() and time.perf_counter() - started < FRESH_SECONDS:
            due = int((time.perf_counter() - started) * RATE)
            for i in range(sent, due):
                now_us = time.time_ns() // 1000
                record = _record(RECORDS + i, now_us)

                def delivered(error: Any, message: Any, at: float = now_us / 1e6) -> None:
                    if error is None:
                        produced.append((message.partition(), message.offset(), at))

                producer.produce(
                    topic,
                    key=record["exchange_symbol"].encode(),
                    value=encode.encode(record),
                    on_delivery=delivered,
                )
            sent = due
            producer.poll(0.005)
        producer.flush(60)

    def on_commit(report: Any) -> None:
        committed.append((report.visible_at or time.time(), report.last_offsets))

    query, _ = start_stream(spark, settings, on_commit=on_commit)
    thread = threading.Thread(target=produce, name="bench-producer")
    try:
        time.sleep(settings.stream.trigger_interval_s * 2 + 5)  # the query is up and idle
        thread.start()
        thread.join()
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline and not _covered(committed, topic, produced[-50:]):
            time.sleep(0.1)
    finally:
        stop.set()
        stop_between_batches(query, 120)
    latencies = sorted(_visible_at(committed, topic, p, o) - at for p, o, at in produced)
    return {
        "rate": RATE,
        "records": len(produced),
        "trigger_interval_s": settings.stream.trigger_interval_s,
        "target_p99_s": settings.stream.trigger_interval_s + 5,
        "p50_s": round(latencies[len(latencies) // 2], 2),
        "p99_s": round(latencies[int(len(latencies) * 0.99)], 2),
        "max_s": round(latencies[-1], 2),
    }


def _covered(committed: list[Any], topic: str, records: list[tuple[int, int, float]]) -> bool:
    return bool(records) and all(
        _visible_at(committed, topic, p, o) != float("inf") for p, o, _ in records
    )


def _visible_at(committed: list[Any], topic: str, partition: int, offset: int) -> float:
    for moment, offsets in committed:
        if offsets.get(topic, {}).get(partition, -1) >= offset:
            return float(moment)
    return float("inf")


def _tree(root: psutil.Process) -> list[psutil.Process]:
    """The run and every process it started, and the stack's JVMs (started detached)."""
    found = [root, *root.children(recursive=True)]
    home = root.environ().get("K2_HOME", "")
    for proc in psutil.process_iter(["cmdline"]):
        args = " ".join(proc.info["cmdline"] or ())
        if home and home in args and proc not in found:
            found.append(proc)
    return found


def _cpu(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for proc in procs:
        try:
            times = proc.cpu_times()
            out[proc.pid] = times.user + times.system
        except psutil.Error:
            continue
    return out


_PARTS = (
    ("kafka.Kafka", "kafka"),
    ("quarkus-run", "registry"),
    ("SparkSubmit", "spark-jvm"),
    ("prometheus", "prometheus"),
    ("job stream", "stream"),
    (" ingest ", "ingest"),
    ("simulate", "simulator"),
    (" api", "api"),
    (" run ", "run"),
)


def _name(proc: psutil.Process) -> str:
    try:
        args = proc.cmdline()
    except psutil.Error:
        return "gone"
    text = " ".join(args)
    for marker, name in _PARTS:
        if marker in f" {text} ":
            return name
    return "other"


def _has_rows(settings: Settings, identifier: str) -> bool:
    catalog = open_catalog(settings.lake_access())
    if not catalog.table_exists(identifier):
        return False
    return catalog.load_table(identifier).current_snapshot() is not None


def _cost(folder: Path, exchanges: tuple[str, ...], books: bool = False) -> dict[str, Any]:
    """CPU and memory of the whole ``k2 run --source simulator`` of ``exchanges`` at the
    simulator's default rate, their order books captured too when ``books``."""
    settings = private_settings(folder)
    env = {
        **{f"K2_INGEST__{name.upper()}__BOOKS": "true" for name in exchanges if books},
        **stack_environment(settings.stack),
        "K2_EXCHANGES": json.dumps(list(exchanges)),
        "K2_INGEST__SIMULATOR_URL": f"http://127.0.0.1:{free_port()}",
        "K2_INGEST__METRICS_PORT": "0",
        "K2_STREAM__METRICS_PORT": "0",
        "K2_API__PORT": "0",
        "K2_PROMETHEUS__LOCAL": "off",
        "K2_LOG_FORMAT": "json",
    }
    log = folder / "run.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "k2", "run", "--source", "simulator"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + WARM_UP_S
        while time.monotonic() < deadline and not _has_rows(settings, "gold.trades"):
            time.sleep(2)
        time.sleep(20)  # past the first batches and the first rollup
        root = psutil.Process(run.pid)
        procs = _tree(root)
        before = _cpu(procs)
        started = time.monotonic()
        time.sleep(COST_SECONDS)
        after = _cpu(procs)
        wall = time.monotonic() - started
        by_part: dict[str, dict[str, float]] = {}
        for proc in procs:
            if proc.pid not in after or proc.pid not in before:
                continue
            part = by_part.setdefault(_name(proc), {"cores": 0.0, "rss_mb": 0.0})
            part["cores"] += (after[proc.pid] - before[proc.pid]) / wall
            try:
                part["rss_mb"] += proc.memory_info().rss / 2**20
            except psutil.Error:
                continue
        total_cores = sum(p["cores"] for p in by_part.values())
        total_rss = sum(p["rss_mb"] for p in by_part.values())
    finally:
        run.send_signal(signal.SIGTERM)
        try:
            run.wait(240)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
        Stack(settings).down()
    return {
        "exchanges": list(exchanges),
        "books": books,
        "seconds": COST_SECONDS,
        "cores": round(total_cores, 3),
        "rss_gb": round(total_rss / 1024, 2),
        "target": {"cores": 0.75, "rss_gb": 3.0},
        "by_part": {k: {m: round(v, 3) for m, v in p.items()} for k, p in sorted(by_part.items())},
    }


def measure_pipeline(base: Settings, folder: Path) -> dict[str, Any]:
    """Throughput (beside a plain Spark copy) and freshness of the streaming job on the stack,
    catalog, warehouse and Spark master that ``base`` names (which must be running)."""
    TopicAdmin(base.kafka_config()).ensure(k2_topics(base.kafka, base.exchanges))
    ensure_namespaces(open_catalog(base.lake_access()), base.lake.namespace_prefix)
    registry = SchemaRegistryClient(base.registry_config())
    prefix = base.kafka.topic_prefix
    topic = raw_topic("kraken", prefix)
    encode = ConfluentEncoder(
        "kraken_raw", register_value_schema(registry, topic, schema_text("kraken_raw"))
    )
    prefill_s = _prefill(base, topic, encode, RECORDS)
    spark = build_session(base.spark_setup(), "k2-bench-stream")
    try:
        plain = _plain_copy(spark, base, topic)
        throughput = _throughput(spark, base, topic)
        checkpoint = base.stream.checkpoint_dir or str(folder / "checkpoint")
        fresh = base.model_copy(
            update={"kafka": base.kafka.model_copy(update={"topic_prefix": f"{prefix}fresh."}),
                    "lake": base.lake.model_copy(update={"namespace_prefix": "fresh_"}),
                    "stream": base.stream.model_copy(
                        update={"checkpoint_dir": f"{checkpoint}-fresh"})}
        )  # fmt: skip
        TopicAdmin(fresh.kafka_config()).ensure(k2_topics(fresh.kafka, fresh.exchanges))
        fresh_topic = raw_topic("kraken", f"{prefix}fresh.")
        fresh_encode = ConfluentEncoder(
            "kraken_raw",
            register_value_schema(registry, fresh_topic, schema_text("kraken_raw")),
        )
        freshness = _freshness(spark, fresh, fresh_topic, fresh_encode)
    finally:
        spark.stop()
    return {
        "defaults": {
            "trigger_interval_s": base.stream.trigger_interval_s,
            "max_offsets_per_trigger": base.stream.max_offsets_per_trigger,
            "rollup_interval_s": base.gold.rollup_interval_s,
        },
        "prefill_records_per_s": round(RECORDS / prefill_s),
        "throughput": {**throughput, "target_rows_per_s": 30_000, "plain_spark_copy": plain},
        "freshness": freshness,
    }


def local_pipeline(folder: Path) -> dict[str, Any]:
    """:func:`measure_pipeline` on a private embedded stack and Spark in local mode."""
    settings = private_settings(folder)
    spark = service_setup(settings.spark_setup()).spark
    base = revised(settings, spark=spark, exchanges=("kraken",))
    stack = Stack(base)
    stack.up()
    try:
        return measure_pipeline(base, folder)
    finally:
        stack.down()


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="k2-bench-stream-") as folder:
        pipeline = local_pipeline(Path(folder) / "pipeline")
    costs = {}
    # The whole pipeline's cost with two exchanges and with every one of the registry: the
    # streaming job's share of it should not grow with the number of exchanges.
    for exchanges in (("kraken", "binance"), EXCHANGE_NAMES):
        with tempfile.TemporaryDirectory(prefix="k2-bench-run-") as folder:
            costs[f"{len(exchanges)}_exchanges"] = _cost(Path(folder), exchanges)
    # With every exchange's order book captured too: the book capture, Bronze and Silver of
    # the books (target: the whole pipeline within one core).
    with tempfile.TemporaryDirectory(prefix="k2-bench-run-") as folder:
        books = _cost(Path(folder), EXCHANGE_NAMES, books=True)
    costs[f"{len(EXCHANGE_NAMES)}_exchanges_with_books"] = {**books, "target": {"cores": 1.0}}
    return {**pipeline, "cost": costs}
