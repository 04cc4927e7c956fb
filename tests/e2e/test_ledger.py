"""Simulator → ingest → Kafka → every layer, with faults all the way, compared with the ledger.

The simulator drops connections, garbles and duplicates frames; the Binance ingest is killed
with SIGKILL and restarted; the streaming job is killed with SIGKILL between its Bronze and its
Silver/Gold commits of a micro-batch, its checkpoint deleted, and restarted; invalid trades are
put on the raw topic by a misbehaving producer. At the end every trade of the ledger is in
``gold.trades`` exactly once with every value equal, every id a venue made between a symbol's
first and last ledger trade is there (the ones no client was sent come from REST backfill), each
garbled frame is in the DLQ, each invalid trade in ``silver.quarantine`` with its reason, and
every 1-minute bar equals the bar computed here from the trades.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from k2.config import Settings, StackSettings
from k2.domain import BAR_INTERVALS, Trade, micros_from_datetime
from k2.exchanges import venue
from k2.exchanges.base import Envelope, RawTrade
from k2.jobs.offsets import marker_offsets
from k2.lake.catalog import open_catalog
from k2.simulator.ledger import LedgerEntry, read_ledger
from k2.stack.ports import free_port
from k2.transport.topics import TopicAdmin, dlq_topic, k2_topics, raw_topic
from tests.integration.lanes import Lane, RawProducer, expected_bars, kraken_v2, to_record
from tests.polling import Pending, log_tail, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(1500)]

PREFIX = "test.ledger."
SYMBOLS = {"kraken": ("BTC/USD", "ETH/USD"), "binance": ("BTCUSDT", "ETHUSDT")}
PER_SYMBOL = 450
WAIT_S = 420.0
Q = "silver.quarantine"


class Parts:
    """The simulator, the ingests and the streaming job as processes of their own."""

    def __init__(self, settings: Settings, home: Path) -> None:
        self.home = home
        self.sim_port = free_port()
        self.ledger = home / "ledger.jsonl"
        stack = settings.stack
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("K2_")},
            "K2_HOME": str(home),
            "K2_STACK__KAFKA_PORT": str(stack.kafka_port),
            "K2_STACK__REGISTRY_PORT": str(stack.registry_port),
            "K2_KAFKA__TOPIC_PREFIX": PREFIX,
            "K2_INGEST__SOURCE": "simulator",
            "K2_INGEST__SIMULATOR_URL": f"http://127.0.0.1:{self.sim_port}",
            "K2_INGEST__BACKFILL_REQUEST_INTERVAL_S": "0.05",
            "K2_STREAM__TRIGGER_INTERVAL_S": "1",
            "K2_STREAM__METRICS_PORT": "0",
            "K2_GOLD__ROLLUP_INTERVAL_S": "5",
            "K2_SPARK__DRIVER_MEMORY": "1g",
            "K2_PROMETHEUS__LOCAL": "off",
            "K2_LOG_FORMAT": "json",
        }
        # The same catalog as the job's, read from the test process.
        self.settings = Settings(
            stack=StackSettings(
                home=home, kafka_port=stack.kafka_port, registry_port=stack.registry_port
            ),
            kafka=settings.kafka.model_copy(update={"topic_prefix": PREFIX}),
            _env_file=None,  # type: ignore[call-arg]
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        with (self.home / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "k2", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_simulator(self) -> None:
        self.start(
            "simulator",
            "simulate", "--port", str(self.sim_port), "--seed", "7", "--id-base", "5000000",
            "--rate", "80", "--kraken-symbols", "XBT/USD,ETH/USD",
            "--binance-symbols", "BTCUSDT,ETHUSDT", "--trades-per-symbol", str(PER_SYMBOL),
            "--ledger", str(self.ledger), "--fault-connections", "2",
            "--drop-after-trades", "120", "--garble-every", "40", "--duplicate-every", "30",
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self.ledger.exists() and time.monotonic() < deadline:
            time.sleep(0.2)

    def start_ingest(self, exchange: str) -> None:
        port = str(free_port())
        self.start(f"ingest-{exchange}", "ingest", "--exchange", exchange, "--metrics-port", port)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)

    def running(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text()[-3000:]

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for name in ("ingest-kraken", "ingest-binance", "stream", "simulator"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            codes[name] = process.wait(180)
        return codes

    def kill_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)


def _poll(
    condition: Callable[[], object],
    what: str,
    parts: Parts,
    timeout_s: float = WAIT_S,
    context: Callable[[], str] | None = None,
) -> None:
    def alive_and(condition: Callable[[], object] = condition) -> object:
        dead = [n for n in ("stream", "ingest-kraken", "ingest-binance") if not parts.running(n)]
        assert not dead, f"{dead} stopped: {parts.log(dead[0])}"
        return condition()

    def described() -> str:
        logs = "\n".join(log_tail(parts.home / f"{name}.log", 2000) for name in parts.processes)
        return f"{context()}\n{logs}" if context is not None else logs

    wait_until(alive_and, timeout_s, what, every_s=0.5, context=described)


def _table(parts: Parts, identifier: str) -> list[dict[str, Any]]:
    catalog = open_catalog(parts.settings)
    if not catalog.table_exists(identifier):
        return []
    rows: list[dict[str, Any]] = catalog.load_table(identifier).scan().to_arrow().to_pylist()
    return rows


def _rows(parts: Parts, identifier: str) -> int:
    catalog = open_catalog(parts.settings)
    if not catalog.table_exists(identifier):
        return 0
    snapshot = catalog.load_table(identifier).current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.additional_properties.get("total-records", 0))


def _between_commits(parts: Parts) -> bool:
    """Bronze has committed a micro-batch that Silver has not (yet)."""
    catalog = open_catalog(parts.settings)
    for exchange in SYMBOLS:
        bronze, silver = f"bronze.{exchange}_trades", f"silver.{exchange}_trades"
        if not (catalog.table_exists(bronze) and catalog.table_exists(silver)):
            continue
        ahead = marker_offsets(catalog.load_table(bronze))
        behind = marker_offsets(catalog.load_table(silver))
        if ahead is not None and (behind is None or ahead.settled != behind.settled):
            return True
    return False


def _ledger(parts: Parts) -> list[LedgerEntry]:
    return [e for e in read_ledger(parts.ledger) if not e.duplicate]


class Quiet:
    """True once the ledger has stopped growing for ``quiet_s`` (the market made its last
    trade: every symbol stops after ``--trades-per-symbol``)."""

    def __init__(self, parts: Parts, quiet_s: float = 8.0) -> None:
        self._parts, self._quiet_s = parts, quiet_s
        self._size, self._since = -1, time.monotonic()

    def __call__(self) -> bool:
        size = self._parts.ledger.stat().st_size
        if size != self._size:
            self._size, self._since = size, time.monotonic()
        symbols = {(e.exchange, e.symbol) for e in _ledger(self._parts)}
        return len(symbols) == 4 and time.monotonic() - self._since >= self._quiet_s


def _expected_ids(ledger: list[LedgerEntry]) -> dict[tuple[str, str], set[int]]:
    """Every id between each symbol's first and last ledger trade (the venue's ids are
    consecutive per symbol): the ones never sent were made meanwhile and come from REST."""
    ids: dict[tuple[str, str], list[int]] = defaultdict(list)
    for entry in ledger:
        assert entry.trade_id is not None
        ids[(entry.exchange, _canonical(entry))].append(entry.trade_id)
    return {key: set(range(min(found), max(found) + 1)) for key, found in ids.items()}


def _canonical(entry: LedgerEntry) -> str:
    return _unified(entry).symbol


def _unified(entry: LedgerEntry) -> Trade:
    """The ledger trade as K2's own normalisation makes it."""
    protocol = "kraken-v2" if entry.exchange == "kraken" else "binance-trade"
    raw = RawTrade(
        entry.exchange,
        entry.symbol,
        entry.trade_id,
        entry.fields,
        Envelope(entry.emit_us, entry.connection, 0, protocol),  # type: ignore[arg-type]
    )
    normalise = venue(entry.exchange).module("normalise").normalise_trade
    if entry.exchange == "binance":
        return normalise(raw, time_unit="MICROSECOND")  # type: ignore[no-any-return]
    return normalise(raw)  # type: ignore[no-any-return]


def _where_short(parts: Parts, expected: dict[tuple[str, str], set[int]]) -> str:
    """Per symbol, the ids of the ledger not in Gold, and each layer's row counts."""
    found: dict[tuple[str, str], set[int]] = defaultdict(set)
    for row in _table(parts, "gold.trades"):
        found[(row["exchange"], row["symbol"])].add(int(row["trade_id"]))
    lines = []
    for key, ids in sorted(expected.items()):
        missing = sorted(ids - found[key])
        lines.append(f"{key}: {len(missing)} missing in Gold {missing[:20]}")
    tables = [
        f"{layer}.{exchange}_trades" for exchange in SYMBOLS for layer in ("bronze", "silver")
    ]
    counts = {t: _rows(parts, t) for t in [*tables, "silver.quarantine", "gold.trades"]}
    return "\n".join([*lines, f"rows: {counts}"])


def _dlq_records(settings: Settings, exchange: str) -> int:
    topic = dlq_topic(exchange, PREFIX)
    consumer = Consumer({**settings.kafka_config(), "group.id": "test-ledger-dlq"})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        total = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 30)
            total += high - low
        return total
    finally:
        consumer.close()


def _inject_invalid(settings: Settings) -> None:
    """A misbehaving producer puts three invalid Kraken trades on the raw topic."""
    lane = Lane(settings.model_copy(update={
        "kafka": settings.kafka.model_copy(update={"topic_prefix": PREFIX}),
        "exchanges": ("kraken",),
    }))  # fmt: skip
    now = time.time_ns() // 1000
    good = [kraken_v2("BTC/USD", 9_000_000 + i, "100.5", "1", now) for i in range(3)]
    RawProducer(lane).send(
        [
            to_record(good[0], qty="0"),
            to_record(good[1], side="hold"),
            to_record(good[2], timestamp="2027-12-01T00:00:00.000000Z"),
        ],
        "kraken",
    )


def test_every_ledger_trade_reaches_gold_once_through_every_fault(
    settings: Settings, stack: Any, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    parts = Parts(settings, home)
    TopicAdmin(parts.settings).ensure(k2_topics(parts.settings))  # as `k2 run` does first
    try:
        parts.start_simulator()
        assert parts.running("simulator"), parts.log("simulator")
        for exchange in SYMBOLS:
            parts.start_ingest(exchange)
        parts.start("stream", "job", "stream")

        # The Binance ingest is killed once a third of its trades are in Bronze, and restarted.
        third = 2 * PER_SYMBOL // 3
        _poll(lambda: _rows(parts, "bronze.binance_trades") >= third, "a third in Bronze", parts)
        parts.kill("ingest-binance")
        time.sleep(2)
        parts.start_ingest("binance")
        _inject_invalid(parts.settings)

        # The streaming job is killed between its Bronze and Silver commits, and loses its
        # checkpoint before it comes back.
        deadline = time.monotonic() + WAIT_S
        while not _between_commits(parts):
            assert parts.running("stream"), parts.log("stream")
            assert time.monotonic() < deadline, "no micro-batch was caught between commits"
            time.sleep(0.02)
        parts.kill("stream")
        shutil.rmtree(home / "checkpoints")
        parts.start("stream", "job", "stream")

        _poll(Quiet(parts), "the simulator to send every trade", parts)
        ledger = _ledger(parts)
        expected = _expected_ids(ledger)
        total = sum(len(ids) for ids in expected.values())

        def gold_complete() -> bool | Pending:
            landed = {"gold": _rows(parts, "gold.trades"), "quarantine": _rows(parts, Q)}
            return (landed["gold"] >= total and landed["quarantine"] >= 3) or Pending(landed)

        _poll(
            gold_complete,
            f"every trade in Gold ({total}) and 3 trades in {Q}",
            parts,
            context=lambda: _where_short(parts, expected),
        )
        codes = parts.stop_all()
    finally:
        parts.kill_all()
    assert all(code == 0 for code in codes.values()), codes
    assert '"event": "stream_resumed_from_table"' in (home / "stream.log").read_text()

    gold = _table(parts, "gold.trades")
    ids = [r["message_id"] for r in gold]
    assert len(ids) == len(set(ids)), "a message_id twice in Gold"
    found: dict[tuple[str, str], set[int]] = defaultdict(set)
    for row in gold:
        found[(row["exchange"], row["symbol"])].add(int(row["trade_id"]))
    assert found == expected  # nothing lost, nothing extra
    by_id = {r["message_id"]: r for r in gold}
    for entry in ledger:
        trade = _unified(entry)
        row = by_id[trade.message_id]
        assert (row["price"], row["quantity"]) == (trade.price, trade.quantity), entry
        assert row["quote_quantity"] == trade.quote_quantity
        assert (row["side"], row["symbol"]) == (trade.side, trade.symbol), entry
        assert micros_from_datetime(row["exchange_ts"]) == micros_from_datetime(trade.exchange_ts)

    frames = read_ledger(parts.ledger)  # copies of duplicated frames are dead letters too
    garbled_frames = {
        (e.exchange, e.connection, e.emit_us, e.duplicate) for e in frames if e.garbled
    }
    assert garbled_frames, "the simulator garbled no frame"
    for exchange in SYMBOLS:
        mine = {f for f in garbled_frames if f[0] == exchange}
        assert _dlq_records(parts.settings, exchange) == len(mine), exchange

    quarantine = _table(parts, "silver.quarantine")
    reasons = sorted(tuple(r["reasons"]) for r in quarantine)
    assert reasons == [("exchange_ts_in_future",), ("quantity_not_positive",), ("side_unknown",)]
    assert all(json.loads(r["raw"])["exchange_symbol"] == "BTC/USD" for r in quarantine)

    bars = expected_bars(
        (
            (r["exchange"], r["symbol"], micros_from_datetime(r["exchange_ts"]), r["trade_id"],
             r["price"], r["quantity"], r["side"])
            for r in gold
        ),
        BAR_INTERVALS["1m"],
    )  # fmt: skip
    stored = {
        (r["exchange"], r["symbol"], micros_from_datetime(r["bar_start"])): r
        for r in _table(parts, "gold.ohlcv_1m")
    }
    assert set(stored) == set(bars)
    for key, bar in bars.items():
        assert {n: stored[key][n] for n in bar.__dataclass_fields__} == bar.__dict__, key
    day = _table(parts, "gold.ohlcv_1d")
    assert sum(b["trade_count"] for b in day) == len(gold)
    assert sum(b["volume"] for b in day) == sum((r["quantity"] for r in gold), Decimal(0))
    assert raw_topic("kraken", PREFIX) in {r["kafka_topic"] for r in gold}
