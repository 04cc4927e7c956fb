"""`k2 job stream` as a real process, once through spark-submit: killed with SIGKILL between its
Bronze and its Silver/Gold commits of a micro-batch, its checkpoint deleted, and stopped with
SIGTERM; in the end every Kafka offset of the topic is in Bronze exactly once, every valid trade
in Silver once and in Gold once, and the bars match the trades.

The job streams the session stack's Binance raw topic into its own catalog and checkpoints (its
own K2_HOME), so whatever else the session put on that topic is simply part of what must land.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyspark
import pytest
from confluent_kafka import Consumer, TopicPartition

import k2
from k2.config import Settings, StackSettings
from k2.jobs.offsets import marker_offsets
from k2.lake.catalog import open_catalog
from k2.schemas import schema_text
from k2.transport.offsets import watermarks
from k2.transport.topics import raw_topic
from tests import polling
from tests.integration.lanes import wait_until
from tests.integration.test_bronze import micros, produce, serializer

pytestmark = pytest.mark.integration

EXCHANGE = "binance"


def binance_record(i: int) -> dict[str, Any]:
    return {
        "exchange_symbol": ("BTCUSDT", "ETHUSDT", "DOGEUSDT")[i % 3],
        "event_type": "trade",
        "event_time": 1_714_564_800_000 + i,
        "trade_id": 5_000_000_000 + i,
        "price": f"{60000 + i % 1000}.{i % 100:02d}000000",
        "quantity": f"0.{i + 1:08d}",
        "trade_time": 1_714_564_800_000 + i,
        "buyer_is_maker": i % 2 == 0,
        "ignore_m": True,
        "stream": "btcusdt@trade",
        "received_us": 1_714_564_800_000_000 + i * 1000,
        "connection_id": "conn-1",
        "position": i,
        "protocol": "binance-trade",
        "message_id": f"binance:{i}",
        "k2_version": "0.1.0",
    }


class StreamProcess:
    """``python -m k2 job stream --exchange binance`` in its own process group and K2_HOME."""

    def __init__(self, settings: Settings, home: Path) -> None:
        self.home = home
        self.log = home / "job.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("K2_")},
            "K2_HOME": str(home),
            "K2_STACK__HOST": settings.stack.host,
            "K2_STACK__KAFKA_PORT": str(settings.stack.kafka_port),
            "K2_STACK__REGISTRY_PORT": str(settings.stack.registry_port),
            "K2_EXCHANGES": f'["{EXCHANGE}"]',
            "K2_STREAM__TRIGGER_INTERVAL_S": "0.5",
            "K2_STREAM__MAX_OFFSETS_PER_TRIGGER": "2500",
            "K2_STREAM__METRICS_PORT": "0",
            "K2_SPARK__DRIVER_MEMORY": "1g",
            "K2_LOG_FORMAT": "json",
        }
        # The same catalog as the job's, read from the test process.
        self.settings = Settings(
            stack=StackSettings(
                home=home,
                host=settings.stack.host,
                kafka_port=settings.stack.kafka_port,
                registry_port=settings.stack.registry_port,
            ),
            _env_file=None,
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, submit: bool = False) -> None:
        """Start the job with ``python -m k2``, or through spark-submit as on a cluster."""
        command = [sys.executable, "-m", "k2", "job", "stream", "--exchange", EXCHANGE]
        env = self.env
        if submit:
            done = subprocess.run(
                [sys.executable, "-m", "k2", "job", "spark-conf"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            spark_home = Path(pyspark.__file__).parent
            env = {**env, "SPARK_HOME": str(spark_home), "PYSPARK_PYTHON": sys.executable}
            command = [
                str(spark_home / "bin" / "spark-submit"),
                "--properties-file",
                done.stdout.strip(),
                "--master",
                "local[2]",
                str(Path(k2.__file__).parent / "__main__.py"),
                *command[3:],
            ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the driver and its JVM at once, as a crashed machine would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(120)

    def records(self, *tables: str) -> int:
        """Rows committed to ``tables`` (default: Bronze's), from the snapshot summaries."""
        catalog = open_catalog(self.settings.lake_access())
        total = 0
        for table in tables or (f"bronze.{EXCHANGE}_trades", f"bronze.{EXCHANGE}_rejects"):
            if not catalog.table_exists(table):
                continue
            snapshot = catalog.load_table(table).current_snapshot()
            if snapshot is not None and snapshot.summary is not None:
                total += int(snapshot.summary.additional_properties.get("total-records", 0))
        return total

    def between_commits(self) -> bool:
        """Silver (and Gold before it) has committed a micro-batch that Bronze has not (yet)."""
        catalog = open_catalog(self.settings.lake_access())
        ahead = [
            marker_offsets(catalog.load_table(t)) if catalog.table_exists(t) else None
            for t in (f"bronze.{EXCHANGE}_trades", f"silver.{EXCHANGE}_trades")
        ]
        bronze, silver = ahead
        return silver is not None and (bronze is None or bronze.settled != silver.settled)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture
def job(settings: Settings, stack: Any, tmp_path: Path) -> Iterator[StreamProcess]:
    process = StreamProcess(settings, tmp_path / "job-home")
    process.home.mkdir()
    yield process
    if process.running():
        process.kill()


def topic_offsets(settings: Settings, topic: str) -> set[tuple[int, int]]:
    """Every (partition, offset) the topic holds now."""
    consumer = Consumer({**settings.kafka_config(), "group.id": "test-bronze-watermarks"})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        offsets = set()
        for partition in partitions:
            low, high = watermarks(consumer, TopicPartition(topic, partition), 30)
            offsets |= {(partition, offset) for offset in range(low, high)}
        return offsets
    finally:
        consumer.close()


def _kill_between_commits(job: StreamProcess, timeout_s: float = 240) -> None:
    """SIGKILL the job the moment Silver has committed a micro-batch Bronze has not."""

    def caught() -> bool:
        assert job.running(), job.log.read_text()[-2000:]
        return job.between_commits()

    what = "a micro-batch caught between its Silver and Bronze commits"
    polling.wait_until(
        caught, timeout_s, what, every_s=0.02, context=lambda: polling.log_tail(job.log)
    )
    job.kill()


def test_killed_driver_and_lost_checkpoint_land_every_trade_once_in_every_layer(
    settings: Settings, job: StreamProcess
) -> None:
    """A streaming job killed mid-stream, killed between its Bronze and Gold commits and restarted
    without its checkpoint still lands every trade once in every layer, and `k2 lake maintain`
    compacts its files without changing a row."""
    topic = raw_topic(EXCHANGE)
    encode = serializer(settings, schema_text("binance_raw"))
    records = [binance_record(i) for i in range(15_000)]
    values: list[bytes | None] = [encode(record, topic) for record in records]
    for index in range(1000, len(values), 2000):
        values[index] = b"\x00\x00\x00\x00"  # poison among them
    coordinates = produce(settings, topic, values)
    expected = topic_offsets(settings, topic)
    total = len(expected)

    job.start()  # SIGKILL once a third has landed, mid-stream
    wait_until(lambda: job.records() >= total // 3 or not job.running(), "a third to land")
    assert job.running(), job.log.read_text()[-2000:]
    job.kill()

    job.start(submit=True)  # through spark-submit; SIGKILL between Gold/Silver and Bronze
    done_before = job.records()
    wait_until(lambda: job.records() > done_before or not job.running(), "this run to land rows")
    _kill_between_commits(job)
    shutil.rmtree(job.home / "checkpoints")  # and lose the checkpoint

    job.start()
    gold = "gold.trades"
    wait_until(lambda: job.records() >= total or not job.running(), "everything in Bronze")
    valid = {c for c, v in zip(coordinates, values, strict=True) if v is not None and len(v) > 5}
    wait_until(lambda: job.records(gold) >= len(valid) or not job.running(), "everything in Gold")
    assert job.terminate() == 0
    log = job.log.read_text()
    assert '"event": "stream_resumed_from_table"' in log
    assert '"event": "stream_job_stopped"' in log

    catalog = open_catalog(job.settings.lake_access())
    seen: list[tuple[int, int]] = []
    trades: dict[tuple[int, int], dict[str, Any]] = {}
    for table in (f"bronze.{EXCHANGE}_trades", f"bronze.{EXCHANGE}_rejects"):
        for row in catalog.load_table(table).scan().to_arrow().to_pylist():
            coordinate = (row["kafka_partition"], row["kafka_offset"])
            seen.append(coordinate)
            if table.endswith("_trades"):
                trades[coordinate] = row
    assert len(seen) == len(set(seen)), "an offset landed twice"
    assert set(seen) == expected
    for coordinate, record, value in zip(coordinates, records, values, strict=True):
        if value is not None and len(value) > 5:
            row = trades[coordinate]
            assert row["message_id"] == record["message_id"] and row["price"] == record["price"]
            assert micros(row["received_us"]) == record["received_us"]

    silver = catalog.load_table(f"silver.{EXCHANGE}_trades").scan().to_arrow().to_pylist()
    silver_offsets = [(r["kafka_partition"], r["kafka_offset"]) for r in silver]
    assert len(silver_offsets) == len(set(silver_offsets)) and set(silver_offsets) >= valid
    gold_rows = catalog.load_table(gold).scan().to_arrow().to_pylist()
    ids = [r["message_id"] for r in gold_rows]
    wanted = {f"binance:{r['exchange_symbol']}:{r['trade_id']}" for r in trades.values()}
    assert len(ids) == len(set(ids)) and set(ids) == wanted
    for interval in ("1m", "1h"):
        bars = catalog.load_table(f"gold.ohlcv_{interval}").scan().to_arrow().to_pylist()
        assert sum(bar["trade_count"] for bar in bars) == len(gold_rows), interval
        volume = sum(bar["volume"] for bar in bars)
        assert volume == sum(r["quantity"] for r in gold_rows), interval

    # `k2 lake maintain` compacts the job's many small files; the rows stay as they are.
    table = f"bronze.{EXCHANGE}_trades"
    files_before = len(catalog.load_table(table).scan().plan_files())
    done = subprocess.run(
        [sys.executable, "-m", "k2", "lake", "maintain", "--table", table],
        env={**job.env, "K2_MAINTENANCE__MIN_INPUT_FILES": "2"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{table}: data files {files_before} ->" in done.stderr
    compacted = catalog.load_table(table)
    assert len(compacted.scan().plan_files()) < files_before
    assert compacted.scan().to_arrow().num_rows == len(trades)
