"""The ingest against a real broker, a real registry and the simulator: what is in Kafka is
compared with the simulator's ledger (and its REST history) after every fault."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from structlog.testing import capture_logs

from k2.config import IngestSettings, Settings
from k2.errors import RegistryError
from k2.exchanges.base import Envelope, RawTrade
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.factory import adapter_for, feed_spec
from k2.ingest.avro import ConfluentEncoder
from k2.ingest.resume import read_resume_points
from k2.ingest.service import IngestService
from k2.observability.metrics import IngestMetrics, Metrics
from k2.schemas import schema_json, schema_text
from k2.schemas.registry import register_value_schema
from k2.simulator.faults import FaultRule
from k2.simulator.ledger import LedgerEntry, read_ledger
from k2.simulator.server import Simulator
from k2.simulator.settings import SimulatorConfig
from k2.stack.manager import Stack
from k2.stack.ports import free_port
from k2.transport.offsets import watermarks
from k2.transport.producer import DurableProducer
from k2.transport.topics import (
    TopicAdmin,
    TopicSpec,
    dlq_topic,
    gaps_topic,
    k2_topics,
    raw_topic,
)
from tests.polling import Pending, log_tail, wait_until, wait_until_async
from tests.simulated import SimulatorThread, simulator_configs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

BINANCE = ("BTCUSDT", "ETHUSDT")
KRAKEN_V2 = ("BTC/USD", "ETH/USD")
KRAKEN_V1 = ("XBT/USD", "ETH/USD")


# --------------------------------------------------------------------------------- helpers


def lane(settings: Settings, name: str, **ingest: Any) -> Settings:
    """Settings whose topics (and registry subjects) belong to this test alone."""
    kafka = settings.kafka.model_copy(update={"topic_prefix": f"test.ingest.{name}."})
    base: dict[str, Any] = {
        "source": "simulator",
        "metrics_port": 0,
        "summary_interval_s": 1.0,
        "flush_timeout_s": 20.0,
        "backfill_request_interval_s": 0.05,
    }
    options = IngestSettings(**{**base, **ingest})
    private = settings.model_copy(update={"kafka": kafka, "ingest": options})
    TopicAdmin(private.kafka_config()).ensure(k2_topics(private.kafka, private.exchanges))
    return private


@dataclass(frozen=True)
class Landed:
    partition: int
    offset: int
    key: str | None
    value: dict[str, Any]


def read_topic(settings: Settings, topic: str) -> list[Landed]:
    """Every record of ``topic`` up to its current end, decoded by its writer schema."""
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"test-read-{os.getpid()}-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    registry = SchemaRegistryClient(settings.registry_config())
    deserialize = AvroDeserializer(registry)
    ctx = SerializationContext(topic, MessageField.VALUE)
    landed: list[Landed] = []
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = {}
        assign = []
        for partition in meta.partitions:
            low, high = watermarks(consumer, TopicPartition(topic, partition), 60)
            if high > low:
                ends[partition] = high
                assign.append(TopicPartition(topic, partition, low))
        if not assign:
            return landed
        consumer.assign(assign)

        def read_to_the_ends() -> bool | Pending:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                key = msg.key().decode() if msg.key() is not None else None
                value = deserialize(msg.value(), ctx)
                landed.append(Landed(msg.partition(), msg.offset(), key, value))
                if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                    ends.pop(msg.partition(), None)
            return not ends or Pending({"partition ends not reached": dict(ends)})

        wait_until(read_to_the_ends, 60, f"{topic} read to its end", every_s=0)
    finally:
        consumer.close()
    return landed


def trade_id(value: dict[str, Any]) -> int:
    found = value.get("trade_id")
    assert isinstance(found, int), value
    return found


# An even rate (no skew): each symbol still has trades left when the ingest subscribes,
# also on a loaded machine where starting the ingest takes seconds.
sim_config = simulator_configs(
    rate=400, skew=0.0, kraken_symbols=KRAKEN_V1, binance_symbols=BINANCE
)


def ledger_of(path: Path, exchange: str) -> list[LedgerEntry]:
    return [e for e in read_ledger(path) if e.exchange == exchange and not e.duplicate]


async def ingest_until(
    settings: Settings,
    exchange: str,
    sim: Simulator,
    done: Callable[[IngestService], bool],
    timeout_s: float = 90.0,
) -> IngestService:
    """Run the ingest in this loop until ``done`` holds, then stop it as SIGTERM would."""
    private = settings.model_copy(
        update={
            "ingest": settings.ingest.model_copy(update={"simulator_url": sim.urls.binance_rest})
        }
    )
    adapter = adapter_for(exchange, private.ingest)
    metrics = IngestMetrics(Metrics(f"ingest-{exchange}"), exchange)
    service = IngestService(private, adapter, feed_spec(private.ingest, adapter), metrics)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    deadline = time.monotonic() + timeout_s
    while not done(service) and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.1)
    stop.set()
    undelivered = await task
    assert undelivered == 0
    return service


def ingest_with_simulator(
    settings: Settings,
    exchange: str,
    config: SimulatorConfig,
    done: Callable[[IngestService], bool],
    timeout_s: float = 90.0,
) -> IngestService:
    """Start the simulator and run the ingest against it until ``done`` holds."""

    async def scenario() -> IngestService:
        async with Simulator(config) as sim:
            return await ingest_until(settings, exchange, sim, done, timeout_s)

    return asyncio.run(scenario())


def delivered(service: IngestService) -> int:
    return sum(c.delivered for c in service.state.symbols.values())


def caught_up(ledger: Path, exchange: str, quiet_s: float = 1.5) -> Callable[[IngestService], bool]:
    """True once the simulator has stopped sending and everything it sent in a readable frame
    was delivered."""
    seen = {"count": -1, "since": time.monotonic()}

    def done(service: IngestService) -> bool:
        sent = len([e for e in ledger_of(ledger, exchange) if not e.snapshot and not e.garbled])
        if sent != seen["count"]:
            seen["count"], seen["since"] = sent, time.monotonic()
            return False
        settled = time.monotonic() - seen["since"] >= quiet_s
        return sent > 0 and settled and delivered(service) >= sent

    return done


def assert_complete(
    landed: list[Landed], symbols: tuple[str, ...], through: dict[str, int]
) -> None:
    """Every id from the symbol's first in Kafka through ``through[symbol]`` is there, and any
    id present twice has one message_id."""
    by_symbol: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for record in landed:
        by_symbol[record.key or ""][trade_id(record.value)].add(record.value["message_id"])
    for symbol in symbols:
        ids = by_symbol[symbol]
        assert ids, f"nothing in Kafka for {symbol}"
        missing = sorted(set(range(min(ids), through[symbol] + 1)) - set(ids))
        assert not missing, f"{symbol}: ids missing from Kafka: {missing[:20]}"
        assert all(len(mids) == 1 for mids in ids.values()), f"{symbol}: two message_ids"


# ----------------------------------------------------------------------------------- tests


def test_every_ledger_trade_lands_once_in_order_binance(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Every Binance trade the exchange sent lands in Kafka once, with every field as sent, keyed by
    its symbol on one partition and in id order."""
    private = lane(settings, "nbinance", binance={"symbols": BINANCE, "time_unit": "MILLISECOND"})
    per_symbol = 600
    config = sim_config(tmp_path, trades_per_symbol=per_symbol)
    ledger_path = tmp_path / "ledger.jsonl"

    ingest_with_simulator(private, "binance", config, caught_up(ledger_path, "binance"))
    ledger = ledger_of(ledger_path, "binance")
    assert len(ledger) > per_symbol
    landed = read_topic(private, raw_topic("binance", private.kafka.topic_prefix))
    assert len(landed) == len(ledger)
    expected = {(e.symbol, e.trade_id): e for e in ledger}
    partitions: dict[str, set[int]] = defaultdict(set)
    for record in landed:
        v = record.value
        entry = expected.pop((v["exchange_symbol"], v["trade_id"]))
        assert record.key == entry.symbol
        partitions[entry.symbol].add(record.partition)
        f = entry.fields
        assert (v["price"], v["quantity"], v["trade_time"], v["event_time"]) == (
            f["p"],
            f["q"],
            f["T"],
            f["E"],
        )
        assert (v["buyer_is_maker"], v["ignore_m"], v["event_type"]) == (f["m"], f["M"], f["e"])
        assert v["message_id"] == f"binance:{entry.symbol}:{entry.trade_id}"
        assert v["protocol"] == "binance-trade"
        assert v["time_unit"] == "MILLISECOND"
    assert not expected
    assert all(len(p) == 1 for p in partitions.values())  # one symbol, one partition
    for symbol in BINANCE:
        in_offset_order = sorted(
            (r for r in landed if r.key == symbol), key=lambda r: (r.partition, r.offset)
        )
        ids = [trade_id(r.value) for r in in_offset_order]
        assert ids == sorted(ids)


def test_every_ledger_trade_lands_once_in_order_kraken_v2(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Every Kraken v2 trade the exchange sent lands in Kafka once, with every field as sent, in id
    order per symbol."""
    private = lane(settings, "nkraken", kraken={"symbols": KRAKEN_V2})
    per_symbol = 400
    config = sim_config(tmp_path, trades_per_symbol=per_symbol)
    ledger_path = tmp_path / "ledger.jsonl"

    ingest_with_simulator(private, "kraken", config, caught_up(ledger_path, "kraken"))
    ledger = [e for e in ledger_of(ledger_path, "kraken") if not e.snapshot]
    assert len(ledger) > per_symbol
    landed = read_topic(private, raw_topic("kraken", private.kafka.topic_prefix))
    got = {(r.value["exchange_symbol"], trade_id(r.value)): r for r in landed}
    assert len(got) == len(landed)  # nothing twice
    for entry in ledger:
        record = got[(entry.symbol, entry.trade_id)]
        v, f = record.value, entry.fields
        assert record.key == entry.symbol
        assert (v["price"], v["qty"], v["side"], v["ord_type"], v["timestamp"]) == (
            f["price"],
            f["qty"],
            f["side"],
            f["ord_type"],
            f["timestamp"],
        )
        assert v["message_id"] == f"kraken:{entry.symbol}:{entry.trade_id}"
    for symbol in KRAKEN_V2:
        ordered = sorted((r for r in landed if r.key == symbol), key=lambda r: r.offset)
        ids = [trade_id(r.value) for r in ordered]
        assert ids == sorted(ids)


def test_disconnect_and_lost_ids_are_backfilled(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Trades missed across forced disconnects and trades the exchange lost are backfilled from
    REST, so nothing sent is missing, and each gap is published as backfilled."""
    private = lane(settings, "backfill", binance={"symbols": BINANCE})
    drop = FaultRule(protocol="binance", connections=2, drop_after_trades=150)
    config = sim_config(tmp_path, rate=600, faults=(drop,), lose_every=13)

    service = ingest_with_simulator(private, "binance", config, lambda s: delivered(s) >= 1500)
    prefix = private.kafka.topic_prefix
    landed = read_topic(private, raw_topic("binance", prefix))
    ledger = ledger_of(config.ledger_path or Path(), "binance")
    last = {s: max(trade_id(r.value) for r in landed if r.key == s) for s in BINANCE}
    assert_complete(landed, BINANCE, last)
    present = {(r.key, trade_id(r.value)) for r in landed}
    # The simulator kept sending after the ingest stopped: compare what it sent up to the end.
    missing = [
        (e.symbol, e.trade_id)
        for e in ledger
        if (e.trade_id or 0) <= last[e.symbol] and (e.symbol, e.trade_id) not in present
    ]
    assert not missing
    backfilled = [r for r in landed if r.value["protocol"] == "binance-rest"]
    assert backfilled, "the lost ids should have come from REST"
    assert sum(c.backfilled for c in service.state.symbols.values()) == len(backfilled)
    gaps = read_topic(private, gaps_topic(prefix))
    assert gaps and all(g.value["backfilled"] for g in gaps)
    assert any(g.value["detected_by"] == "reconnect" for g in gaps)


def test_malformed_frames_go_to_the_dlq_and_every_trade_is_delivered(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Every garbled frame goes to the DLQ with its text, error and receive time, and the trades it
    held are recovered from REST."""
    private = lane(settings, "dlq", binance={"symbols": BINANCE})
    garble = FaultRule(protocol="binance", garble_every=25)
    config = sim_config(tmp_path, trades_per_symbol=250, faults=(garble,))

    service = ingest_with_simulator(
        private, "binance", config, caught_up(tmp_path / "ledger.jsonl", "binance")
    )
    prefix = private.kafka.topic_prefix
    ledger = ledger_of(tmp_path / "ledger.jsonl", "binance")
    garbled = [e for e in ledger if e.garbled]
    assert garbled
    dead = read_topic(private, dlq_topic("binance", prefix))
    assert len(dead) == len(garbled) == service.state.dead_lettered
    for letter in dead:
        assert letter.value["raw"] and letter.value["error"]
        assert letter.value["received_us"] is not None
    landed = read_topic(private, raw_topic("binance", prefix))
    present = {(r.key, trade_id(r.value)) for r in landed}
    # A garbled trade's id is a gap to the feed, which REST fills once the next trade of its
    # symbol arrives: every trade up to each symbol's last readable one is there.
    last = {
        s: max(e.trade_id or 0 for e in ledger if e.symbol == s and not e.garbled) for s in BINANCE
    }
    expected = {(e.symbol, e.trade_id) for e in ledger if (e.trade_id or 0) <= last[e.symbol]}
    assert expected <= present
    assert any(e.garbled and (e.symbol, e.trade_id) in present for e in ledger)


def test_kraken_v1_reconnect_publishes_a_gap_event(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """A Kraken v1 reconnect, which cannot be backfilled by id, publishes a gap event with its time
    range and the reason."""
    private = lane(settings, "v1gap", kraken={"symbols": KRAKEN_V1, "protocol": "kraken-v1"})
    drop = FaultRule(protocol="kraken-v1", connections=1, drop_after_trades=120)
    config = sim_config(tmp_path, faults=(drop,))

    service = ingest_with_simulator(
        private, "kraken", config, lambda s: sum(c.gaps for c in s.state.symbols.values()) > 0
    )
    gaps = read_topic(private, gaps_topic(private.kafka.topic_prefix))
    assert gaps, "a v1 reconnect must leave a gap event"
    for gap in gaps:
        v = gap.value
        assert v["exchange"] == "kraken" and v["exchange_symbol"] in KRAKEN_V1
        assert v["backfilled"] is False and v["first_missing_id"] is None
        assert v["from_us"] is not None and v["to_us"] is not None
        assert v["from_us"] <= v["to_us"]
        assert "no trade ids" in v["reason"]
    assert sum(c.gaps for c in service.state.symbols.values()) == len(gaps)


def test_backward_compatible_schema_change_registers_and_old_records_decode(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """A backward-compatible raw schema version registers beside the old one, and records already
    written decode with it."""
    private = lane(settings, "schema", binance={"symbols": ("BTCUSDT",)})
    # 20 trades/s per symbol: the 50 trades take 2.5 s, so most are sent after the ingest
    # connects (a first run starts from the trades it receives, not from the exchange's history).
    config = sim_config(tmp_path, rate=60, trades_per_symbol=50, binance_symbols=("BTCUSDT",))

    ingest_with_simulator(
        private, "binance", config, caught_up(tmp_path / "ledger.jsonl", "binance")
    )
    sent = len(ledger_of(tmp_path / "ledger.jsonl", "binance"))
    topic = raw_topic("binance", private.kafka.topic_prefix)
    registry = SchemaRegistryClient(private.registry_config())
    old_id = registry.get_latest_version(f"{topic}-value").schema_id
    evolved = schema_json("binance_raw")
    evolved["fields"].append({"name": "exchange_note", "type": ["null", "string"], "default": None})
    new_id = register_value_schema(registry, topic, json.dumps(evolved))
    assert new_id != old_id
    reader = AvroDeserializer(registry, schema_str=json.dumps(evolved))
    ctx = SerializationContext(topic, MessageField.VALUE)
    consumer = Consumer(
        {**private.kafka_config(), "group.id": "schema-check", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    decoded = []

    def read_every_record() -> bool | Pending:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            decoded.append(reader(msg.value(), ctx))
        return len(decoded) >= sent or Pending({"read": len(decoded), "sent": sent})

    try:
        wait_until(read_every_record, 30, "every record read with the new schema", every_s=0)
    finally:
        consumer.close()
    assert len(decoded) == sent > 0
    assert all(d["exchange_note"] is None and d["price"] for d in decoded)


def register_together(registry_config: dict[str, Any], topic: str, schema: str) -> list[Any]:
    """Two clients register ``schema`` for a new ``topic`` at the same moment; their outcomes."""
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def register() -> None:
        client = SchemaRegistryClient(registry_config)
        barrier.wait()
        try:
            outcomes.append(register_value_schema(client, topic, schema))
        except RegistryError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=register) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_two_processes_registering_a_new_subject_at_once_both_succeed(
    stack: Stack, settings: Settings
) -> None:
    """Two ingests start together and both register the shared gap subject first."""
    registry_config = settings.registry_config()
    for attempt in range(8):
        topic = f"test.ingest.race.{attempt}.{time.monotonic_ns()}"
        outcomes = register_together(registry_config, topic, schema_text("gap"))
        assert len(outcomes) == 2 and all(isinstance(o, int) for o in outcomes), outcomes
        assert outcomes[0] == outcomes[1]
        compatibility = SchemaRegistryClient(registry_config).get_compatibility(f"{topic}-value")
        assert compatibility == "BACKWARD"


def test_incompatible_schema_is_refused_before_producing(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """An ingest whose raw schema is incompatible with the registered one stops with one line naming
    the subject, before it writes anything."""
    private = lane(settings, "badschema", binance={"symbols": ("BTCUSDT",)})
    topic = raw_topic("binance", private.kafka.topic_prefix)
    registry = SchemaRegistryClient(private.registry_config())
    # A registered version whose price is a number: K2's string price cannot read its records.
    other = schema_json("binance_raw")
    other["fields"] = [
        {**f, "type": "double"} if f["name"] == "price" else f for f in other["fields"]
    ]
    register_value_schema(registry, topic, json.dumps(other))
    config = sim_config(tmp_path, trades_per_symbol=20, binance_symbols=("BTCUSDT",))

    with pytest.raises(RegistryError, match="not BACKWARD-compatible") as refused:
        ingest_with_simulator(private, "binance", config, lambda s: False, timeout_s=10)
    assert "\n" not in str(refused.value)
    assert topic + "-value" in str(refused.value)
    assert read_topic(private, topic) == []
    assert schema_text("binance_raw")  # the packaged schema itself is untouched


# ------------------------------------------------------------------ process-level faults


def ingest_env(settings: Settings, sim: Simulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("K2_")}
    stack = settings.stack
    env.update(
        {
            "K2_STACK__HOME": str(stack.home),
            "K2_STACK__KAFKA_PORT": str(stack.kafka_port),
            "K2_STACK__REGISTRY_PORT": str(stack.registry_port),
            "K2_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
            "K2_INGEST__SOURCE": "simulator",
            "K2_INGEST__SIMULATOR_URL": sim.urls.binance_rest,
            "K2_INGEST__BINANCE__SYMBOLS": json.dumps(
                list(settings.ingest.exchange("binance").symbols)
            ),
            "K2_INGEST__QUEUE_MAX_MESSAGES": str(settings.ingest.queue_max_messages),
            "K2_INGEST__BACKFILL_REQUEST_INTERVAL_S": "0.05",
            "K2_INGEST__SUMMARY_INTERVAL_S": "1",
            "K2_LOG_FORMAT": "json",
        }
    )
    return env


def start_ingest(env: dict[str, str], log: Path, port: int) -> subprocess.Popen[bytes]:
    code = "from k2.cli import main; main()"
    args = ["ingest", "--exchange", "binance", "--metrics-port", str(port)]
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def scrape(port: int, name: str) -> float:
    """The sum of a metric's samples from the ingest's /metrics, or -1 if not served yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return -1.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_metric(
    port: int, name: str, at_least: float, timeout_s: float, what: str, log: Path | None = None
) -> float:
    """Wait until the ingest on ``port`` reports ``name`` at ``at_least`` or more; on a timeout
    say the last value and the end of the ingest's log."""

    def reached() -> float | Pending:
        value = scrape(port, name)
        return value if value >= at_least else Pending({name: value, "wanted": at_least})

    context = (lambda: log_tail(log)) if log is not None else None
    return wait_until(reached, timeout_s, what, context=context)


@pytest.fixture
def sim_thread(tmp_path: Path) -> Iterator[tuple[Simulator, SimulatorThread]]:
    runner = SimulatorThread(sim_config(tmp_path, rate=500, binance_symbols=BINANCE))
    with runner as sim:
        yield sim, runner


def test_sigkill_and_restart_lose_nothing(
    stack: Stack,
    settings: Settings,
    tmp_path: Path,
    sim_thread: tuple[Simulator, SimulatorThread],
) -> None:
    """An ingest killed with SIGKILL and restarted resumes from what Kafka holds and backfills the
    downtime, so nothing is lost and nothing gets a second id."""
    sim, _ = sim_thread
    private = lane(settings, "sigkill", binance={"symbols": BINANCE})
    port = free_port()
    env = ingest_env(private, sim)
    log = tmp_path / "ingest.log"
    first = start_ingest(env, log, port)
    second = None
    try:
        wait_metric(port, "k2_ingest_trades_delivered_total", 800, 60, "delivery", log)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        time.sleep(2.0)  # the exchange keeps trading while the ingest is down
        second = start_ingest(env, log, port)
        wait_metric(port, "k2_ingest_trades_backfilled_total", 1, 60, "backfill", log)
        wait_metric(port, "k2_ingest_trades_delivered_total", 800, 60, "delivery", log)
        second.send_signal(signal.SIGTERM)
        assert second.wait(40) == 0, log.read_text()[-3000:]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    landed = read_topic(private, raw_topic("binance", private.kafka.topic_prefix))
    last = {s: max(trade_id(r.value) for r in landed if r.key == s) for s in BINANCE}
    assert_complete(landed, BINANCE, last)
    ledger = ledger_of(sim.config.ledger_path or Path(), "binance")
    present = {(r.key, trade_id(r.value)) for r in landed}
    sent = {(e.symbol, e.trade_id) for e in ledger if e.trade_id is not None}
    in_range = {(s, i) for s, i in sent if i <= last[s]}
    assert in_range <= present
    # Re-sent trades (the killed run's undelivered tail, backfill overlap) keep their id.
    assert len({r.value["message_id"] for r in landed}) == len(present)
    assert "ingest_resumed_from_topic" in log.read_text()


def test_trades_made_while_the_ingest_was_down_are_recovered_though_the_symbol_stays_quiet(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """An ingest restarted after the exchange's last trades (nothing live reveals the gap) reads
    the exchange's newest ids from its history and backfills up to them."""
    private = lane(settings, "quiet", binance={"symbols": BINANCE})
    per_symbol = 120
    config = sim_config(tmp_path, rate=20, trades_per_symbol=per_symbol)  # 12 s of trading

    async def scenario() -> tuple[IngestService, dict[str, int]]:
        async with Simulator(config) as sim:
            histories = sim.market("binance").histories
            await ingest_until(private, "binance", sim, lambda s: delivered(s) >= 40)
            await wait_until_async(
                lambda: all(len(histories[s].trades) >= per_symbol for s in BINANCE),
                60,
                "the exchange's last trade",
            )
            newest = {s: histories[s].trades[-1].trade_id for s in BINANCE}
            again = await ingest_until(
                private,
                "binance",
                sim,
                lambda s: len(s.state.symbols) == len(BINANCE)
                and all(c.backfilled for c in s.state.symbols.values()),
                timeout_s=60,
            )
            return again, newest

    again, newest = asyncio.run(scenario())
    landed = read_topic(private, raw_topic("binance", private.kafka.topic_prefix))
    assert_complete(landed, BINANCE, newest)
    assert {s: max(trade_id(r.value) for r in landed if r.key == s) for s in BINANCE} == newest
    gaps = read_topic(private, gaps_topic(private.kafka.topic_prefix))
    history = [g.value for g in gaps if g.value["detected_by"] == "history_check"]
    assert {g["exchange_symbol"] for g in history} == set(BINANCE)
    assert all(g["backfilled"] for g in history)
    assert sum(c.backfilled for c in again.state.symbols.values()) == sum(
        g["backfilled_count"] for g in history
    )


def test_broker_outage_keeps_memory_bounded_and_loses_nothing(
    stack: Stack,
    settings: Settings,
    tmp_path: Path,
    sim_thread: tuple[Simulator, SimulatorThread],
) -> None:
    """While the broker is down the ingest's queue and memory stay bounded, and once it is back
    every trade is delivered."""
    sim, _ = sim_thread
    queue_max = 2_000
    private = lane(settings, "outage", binance={"symbols": BINANCE}, queue_max_messages=queue_max)
    port = free_port()
    log = tmp_path / "ingest.log"
    ingest = start_ingest(ingest_env(private, sim), log, port)
    proc = psutil.Process(ingest.pid)
    try:
        wait_metric(port, "k2_ingest_trades_delivered_total", 500, 60, "delivery", log)
        broker = stack.services[0]
        assert broker.stop()
        rss_at_stop = proc.memory_info().rss
        peak_rss, peak_depth = rss_at_stop, 0.0
        outage_end = time.monotonic() + 12  # at 500 trades/s: 6,000 trades, 3x the queue bound
        while time.monotonic() < outage_end:
            peak_rss = max(peak_rss, proc.memory_info().rss)
            peak_depth = max(peak_depth, scrape(port, "k2_ingest_producer_queue_depth"))
            time.sleep(0.2)
        assert broker.start()
        delivered_then = scrape(port, "k2_ingest_trades_delivered_total")
        wait_metric(
            port,
            "k2_ingest_trades_delivered_total",
            delivered_then + 3000,
            120,
            "delivery after the broker returned",
            log,
        )
        ingest.send_signal(signal.SIGTERM)
        assert ingest.wait(40) == 0, log.read_text()[-3000:]
    finally:
        if ingest.poll() is None:
            ingest.kill()
    # librdkafka's queue length also counts delivery reports waiting for a poll
    assert peak_depth <= queue_max + 10
    assert peak_rss - rss_at_stop < 64 * 2**20, (rss_at_stop, peak_rss)
    landed = read_topic(private, raw_topic("binance", private.kafka.topic_prefix))
    last = {s: max(trade_id(r.value) for r in landed if r.key == s) for s in BINANCE}
    assert_complete(landed, BINANCE, last)


def test_resume_point_of_a_quiet_symbol_is_found_behind_a_busy_one(
    stack: Stack, settings: Settings
) -> None:
    """One partition: a quiet symbol's last record sits 5,000 records behind the end."""
    private = lane(settings, "resume")
    private = private.model_copy(
        update={"kafka": private.kafka.model_copy(update={"topic_partitions": 1})}
    )
    topic = raw_topic("binance", private.kafka.topic_prefix) + ".single"
    TopicAdmin(private.kafka_config()).ensure([TopicSpec(topic, 1, 1)])
    registry = SchemaRegistryClient(private.registry_config())
    adapter = adapter_for("binance", private.ingest)
    encoder = ConfluentEncoder(
        "binance_raw", register_value_schema(registry, topic, schema_text("binance_raw"))
    )
    producer = DurableProducer(private.kafka_config())

    def record(symbol: str, trade: int) -> bytes:
        fields = binance_wire.trade_fields(symbol, trade, "1.5", "2", 1_700_000_000_000, False)
        raw = RawTrade("binance", symbol, trade, fields, Envelope(1, "c", trade, "binance-trade"))
        return encoder.encode(adapter.to_record(raw, adapter.message_id(raw), "t"))

    for trade in range(1, 11):
        assert producer.try_produce(topic, record("QUIETUSDT", trade), b"QUIETUSDT")
    for trade in range(1, 5001):
        while not producer.try_produce(topic, record("BUSYUSDT", trade), b"BUSYUSDT"):
            producer.poll(0.1)
    assert producer.close(30) == 0
    points = read_resume_points(
        private.kafka_config(),
        registry,
        topic,
        adapter.record_trade_id,
        {"QUIETUSDT", "BUSYUSDT"},
        tail=500,
    )
    assert points["QUIETUSDT"].last_trade_id == 10
    assert points["BUSYUSDT"].last_trade_id == 5000


def test_a_simulator_restarted_with_old_ids_is_reported_and_one_with_new_ids_delivers(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Ids that went back are dropped as already delivered, loudly; a simulator started later
    with its default (clock-based) ids is new trading after a gap that the ingest reports."""
    private = lane(settings, "restart", binance={"symbols": BINANCE})
    runs = [tmp_path / name for name in ("first", "again", "later")]
    for folder in runs:
        folder.mkdir()
    fixed = {"id_base": 5_000_000, "trades_per_symbol": 200}

    first = ingest_with_simulator(
        private,
        "binance",
        sim_config(runs[0], **fixed),
        caught_up(runs[0] / "ledger.jsonl", "binance"),
    )
    sent_first = ledger_of(runs[0] / "ledger.jsonl", "binance")
    assert sent_first and delivered(first) == len(sent_first)

    settled_at: list[float] = []

    def replayed_all(service: IngestService) -> bool:
        """Everything the simulator sent was dropped, and two 1 s summaries have passed since."""
        sent = len(ledger_of(runs[1] / "ledger.jsonl", "binance"))
        if not settled_at and sent and service.state.feed.duplicates_dropped >= sent:
            settled_at.append(time.monotonic())
        return bool(settled_at) and time.monotonic() - settled_at[0] > 2.5

    with capture_logs() as logs:
        again = ingest_with_simulator(
            private, "binance", sim_config(runs[1], **fixed), replayed_all
        )
    sent_again = ledger_of(runs[1] / "ledger.jsonl", "binance")
    assert delivered(again) == 0
    assert again.state.feed.duplicates_dropped == len(sent_again) > 0
    warnings = [entry for entry in logs if entry["event"] == "ingest_only_replayed_trades"]
    assert warnings and all(w["log_level"] == "warning" for w in warnings), logs
    assert sum(w["dropped"] for w in warnings) == len(sent_again)

    later = ingest_with_simulator(
        private,
        "binance",
        sim_config(runs[2], trades_per_symbol=200),
        caught_up(runs[2] / "ledger.jsonl", "binance"),
    )
    sent_later = ledger_of(runs[2] / "ledger.jsonl", "binance")
    assert delivered(later) >= len(sent_later) > 0
    assert all(counts.gaps >= 1 for counts in later.state.symbols.values())
    landed = read_topic(private, raw_topic("binance", private.kafka.topic_prefix))
    present = {(r.key, trade_id(r.value)) for r in landed}
    for entry in [*sent_first, *sent_later]:
        assert (entry.symbol, entry.trade_id) in present
