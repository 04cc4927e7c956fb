"""A whole pipeline run against the simulator's ledger, on whatever the environment points at.

:class:`LedgerRun` starts the simulator (with its faults), the ingests and the streaming job as
processes of their own, configured only by environment variables: the session's embedded stack,
or a cluster of real servers. It reads the tables back through the same catalog and compares
them with the ledger (every trade the simulator made): nothing missing, nothing twice, every
value equal, each garbled frame in the DLQ, each invalid trade quarantined, bars exact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
from confluent_kafka import Consumer, TopicPartition

from k2.config import Settings
from k2.domain import BAR_INTERVALS, Trade, micros_from_datetime
from k2.exchanges import EXCHANGES, exchange_entry
from k2.exchanges.base import Envelope, RawTrade
from k2.jobs.offsets import marker_offsets
from k2.lake.catalog import open_catalog
from k2.simulator.exchanges.bybit.ids import STRIDE
from k2.simulator.instruments import catalog
from k2.simulator.ledger import LedgerEntry, read_ledger
from k2.simulator.market import SymbolGenerator
from k2.stack.ports import free_port
from k2.transport.offsets import watermarks
from k2.transport.topics import TopicAdmin, dlq_topic, k2_topics, raw_topic
from tests.integration.lanes import Lane, RawProducer, expected_bars, kraken_v2, to_record
from tests.polling import Pending, log_tail, wait_until

# Each exchange's two symbols as its feed names them (the ledger's names), and as the simulator
# is told to list them: every exchange of the registry runs.
SYMBOLS = {
    "kraken": ("BTC/USD", "ETH/USD"),
    "binance": ("BTCUSDT", "ETHUSDT"),
    "coinbase": ("BTC-USD", "ETH-USD"),
    "okx": ("BTC-USDT", "ETH-USDT"),
    "bybit": ("BTCUSDT", "ETHUSDT"),
}
LISTED = {**SYMBOLS, "kraken": ("XBT/USD", "ETH/USD")}
QUARANTINE = "silver.quarantine"
PARTS = ("stream", *(f"ingest-{exchange}" for exchange in SYMBOLS))
SEED, ID_BASE = 7, 5_000_000  # the simulator's market, the same on every run
# How far apart one symbol's consecutive ids are: Bybit numbers every symbol's trades from one
# counter (the simulator's stride), the others each symbol's own.
ID_STEP = {"bybit": STRIDE}


def settings_from(env: Mapping[str, str]) -> Settings:
    """The settings a K2 process started with ``env`` reads (its K2_* variables only)."""
    k2 = {key: value for key, value in env.items() if key.startswith("K2_")}
    with mock.patch.dict(os.environ, k2):
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
    home = Path(k2["K2_HOME"])
    return settings.model_copy(update={"stack": settings.stack.model_copy(update={"home": home})})


class LedgerRun:
    """The simulator, the ingests and the streaming job of one run, and what they wrote."""

    def __init__(
        self, env: Mapping[str, str], home: Path, prefix: str, per_symbol: int, wait_s: float
    ) -> None:
        self.home = home
        self.prefix = prefix
        self.per_symbol = per_symbol
        self.wait_s = wait_s
        self.sim_port = free_port()
        self.ledger = home / "ledger.jsonl"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("K2_")},
            **env,
            "K2_HOME": str(home),
            "K2_KAFKA__TOPIC_PREFIX": prefix,
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
        self.settings = settings_from(self.env)  # the job's catalog, read from the test
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    # ---------------------------------------------------------------------------- processes

    def start(self, name: str, *args: str) -> None:
        with (self.home / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "k2", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_all(self) -> None:
        """Topics (as ``k2 run`` creates them first), the simulator, both ingests, the job."""
        TopicAdmin(self.settings.kafka_config()).ensure(
            k2_topics(self.settings.kafka, self.settings.exchanges)
        )
        self.start(
            "simulator",
            "simulate", "--port", str(self.sim_port), "--seed", str(SEED),
            "--id-base", str(ID_BASE), "--rate", "80", "--trades-per-symbol", str(self.per_symbol),
            "--ledger", str(self.ledger),
            *(arg for name in EXCHANGES for arg in (f"--{name}-symbols", ",".join(LISTED[name]))),
        )  # fmt: skip
        wait_until(self.ledger.exists, 60, "the simulator's ledger", context=self.logs)
        for exchange in SYMBOLS:  # each exchange's first connection: whichever connects first
            self.fault(
                protocol=exchange, connections=1, drop_after_trades=120, garble_every=40,
                duplicate_every=30,
            )  # fmt: skip
        for exchange in SYMBOLS:
            self.start_ingest(exchange)
        self.start("stream", "job", "stream")

    def fault(self, **rule: Any) -> None:
        """A fault rule for the simulator (see :class:`k2.simulator.faults.FaultRule`)."""
        url = f"http://127.0.0.1:{self.sim_port}/_sim/faults"

        def posted() -> httpx.Response | Pending:
            try:
                return httpx.post(url, json=rule, timeout=30)
            except httpx.TransportError as exc:  # its server is still binding
                return Pending(str(exc))

        response = wait_until(posted, 60, "the simulator's admin endpoint", context=self.logs)
        assert response.status_code == 200, response.text

    def start_ingest(self, exchange: str) -> None:
        port = str(free_port())
        self.start(f"ingest-{exchange}", "ingest", "--exchange", exchange, "--metrics-port", port)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)

    def running(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for name in (*(part for part in PARTS if part != "stream"), "stream", "simulator"):
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

    @contextmanager
    def running_parts(self) -> Iterator[LedgerRun]:
        try:
            yield self
        finally:
            self.kill_all()

    def logs(self) -> str:
        return "\n".join(log_tail(self.home / f"{name}.log", 2000) for name in self.processes)

    def poll(
        self,
        condition: Callable[[], object],
        what: str,
        timeout_s: float | None = None,
        context: Callable[[], str] | None = None,
        every_s: float = 0.5,
    ) -> None:
        """Wait for ``condition`` while every part runs; fail at once when one stopped."""

        def alive_and() -> object:
            dead = [name for name in PARTS if name in self.processes and not self.running(name)]
            assert not dead, f"{dead} stopped:\n{self.logs()}"
            return condition()

        def described() -> str:
            return f"{context()}\n{self.logs()}" if context is not None else self.logs()

        wait_until(alive_and, timeout_s or self.wait_s, what, every_s=every_s, context=described)

    # ------------------------------------------------------------------------------- tables

    def qualified(self, identifier: str) -> str:
        """``gold.trades`` as this run's catalog names it (with its namespace prefix)."""
        return f"{self.settings.lake.namespace_prefix}{identifier}"

    def table(self, identifier: str) -> list[dict[str, Any]]:
        catalog = open_catalog(self.settings.lake_access())
        identifier = self.qualified(identifier)
        if not catalog.table_exists(identifier):
            return []
        rows: list[dict[str, Any]] = catalog.load_table(identifier).scan().to_arrow().to_pylist()
        return rows

    def rows(self, identifier: str) -> int:
        catalog = open_catalog(self.settings.lake_access())
        identifier = self.qualified(identifier)
        if not catalog.table_exists(identifier):
            return 0
        snapshot = catalog.load_table(identifier).current_snapshot()
        if snapshot is None or snapshot.summary is None:
            return 0
        return int(snapshot.summary.additional_properties.get("total-records", 0))

    def between_commits(self) -> bool:
        """Bronze has committed a micro-batch that Silver has not (yet)."""
        catalog = open_catalog(self.settings.lake_access())
        for exchange in SYMBOLS:
            bronze = self.qualified(f"bronze.{exchange}_trades")
            silver = self.qualified(f"silver.{exchange}_trades")
            if not (catalog.table_exists(bronze) and catalog.table_exists(silver)):
                continue
            ahead = marker_offsets(catalog.load_table(bronze))
            behind = marker_offsets(catalog.load_table(silver))
            if ahead is not None and (behind is None or ahead.settled != behind.settled):
                return True
        return False

    def inject_invalid(self) -> None:
        """A misbehaving producer puts three invalid Kraken trades on the raw topic."""
        lane = Lane(self.settings.model_copy(update={"exchanges": ("kraken",)}))
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

    # ------------------------------------------------------------------------------- ledger

    def entries(self) -> list[LedgerEntry]:
        return [e for e in read_ledger(self.ledger) if not e.duplicate]

    def quiet(self, quiet_s: float = 8.0) -> Callable[[], bool]:
        """True once the ledger has stopped growing for ``quiet_s`` (the market made its last
        trade: every symbol stops after ``--trades-per-symbol``)."""
        seen = {"size": -1, "since": time.monotonic()}

        def done() -> bool:
            size = self.ledger.stat().st_size
            if size != seen["size"]:
                seen["size"], seen["since"] = size, time.monotonic()
            symbols = {(e.exchange, e.symbol) for e in self.entries()}
            listed = sum(map(len, SYMBOLS.values()))
            return len(symbols) == listed and time.monotonic() - seen["since"] >= quiet_s

        return done

    def wait_for_every_trade(self) -> dict[tuple[str, str], set[int]]:
        """Wait for the market's end, then for every ledger id and the three invalid trades to
        land; the expected ids per (exchange, canonical symbol)."""
        self.poll(self.quiet(), "the simulator to send every trade")
        expected = expected_ids(self.entries(), self.per_symbol)
        total = sum(len(ids) for ids in expected.values())

        def complete() -> bool | Pending:
            landed = {"gold": self.rows("gold.trades"), "quarantine": self.rows(QUARANTINE)}
            return (landed["gold"] >= total and landed["quarantine"] >= 3) or Pending(landed)

        self.poll(
            complete,
            f"every trade in Gold ({total}) and 3 trades in {QUARANTINE}",
            context=lambda: self.where_short(expected),
        )
        return expected

    def where_short(self, expected: dict[tuple[str, str], set[int]]) -> str:
        """Per symbol, the expected ids not in Gold and the ids in Gold not expected, and each
        layer's row counts."""
        found: dict[tuple[str, str], set[int]] = defaultdict(set)
        for row in self.table("gold.trades"):
            found[(row["exchange"], row["symbol"])].add(int(row["trade_id"]))
        lines = []
        for key in sorted(set(expected) | set(found)):
            missing = sorted(expected.get(key, set()) - found[key])
            extra = sorted(found[key] - expected.get(key, set()))
            lines.append(
                f"{key}: {len(missing)} missing in Gold {missing[:20]}, "
                f"{len(extra)} not expected {extra[:20]}"
            )
        tables = [f"{layer}.{ex}_trades" for ex in SYMBOLS for layer in ("bronze", "silver")]
        counts = {t: self.rows(t) for t in [*tables, QUARANTINE, "gold.trades"]}
        return "\n".join([*lines, f"rows: {counts}"])

    def dlq_records(self, exchange: str) -> int:
        topic = dlq_topic(exchange, self.prefix)
        consumer = Consumer({**self.settings.kafka_config(), "group.id": "test-ledger-dlq"})
        try:
            partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
            total = 0
            for partition in partitions:
                low, high = watermarks(consumer, TopicPartition(topic, partition), 30)
                total += high - low
            return total
        finally:
            consumer.close()

    def assert_ledger_in_gold(self, expected: dict[tuple[str, str], set[int]]) -> None:
        """Gold holds every ledger trade once with every value equal, the DLQ each garbled
        frame, the quarantine each invalid trade, and every bar is the bar of the trades."""
        gold = self.table("gold.trades")
        ids = [r["message_id"] for r in gold]
        assert len(ids) == len(set(ids)), "a message_id twice in Gold"
        found: dict[tuple[str, str], set[int]] = defaultdict(set)
        for row in gold:
            found[(row["exchange"], row["symbol"])].add(int(row["trade_id"]))
        assert found == expected, self.where_short(expected)  # nothing lost, nothing extra
        by_id = {r["message_id"]: r for r in gold}
        for entry in self.entries():
            trade = unified(entry)
            row = by_id[trade.message_id]
            assert (row["price"], row["quantity"]) == (trade.price, trade.quantity), entry
            assert row["quote_quantity"] == trade.quote_quantity
            assert (row["side"], row["symbol"]) == (trade.side, trade.symbol), entry
            assert micros_from_datetime(row["exchange_ts"]) == micros_from_datetime(
                trade.exchange_ts
            )

        frames = read_ledger(self.ledger)  # copies of duplicated frames are dead letters too
        garbled = {(e.exchange, e.connection, e.emit_us, e.duplicate) for e in frames if e.garbled}
        assert garbled, "the simulator garbled no frame"
        for exchange in SYMBOLS:
            mine = {f for f in garbled if f[0] == exchange}
            assert self.dlq_records(exchange) == len(mine), exchange

        quarantine = self.table(QUARANTINE)
        reasons = sorted(tuple(r["reasons"]) for r in quarantine)
        assert reasons == [
            ("exchange_ts_in_future",),
            ("quantity_not_positive",),
            ("side_unknown",),
        ]
        assert all(json.loads(r["raw"])["exchange_symbol"] == "BTC/USD" for r in quarantine)

        bars = expected_bars(
            (
                (r["exchange"], r["symbol"], micros_from_datetime(r["exchange_ts"]),
                 r["trade_id"], r["price"], r["quantity"], r["side"])
                for r in gold
            ),
            BAR_INTERVALS["1m"],
        )  # fmt: skip
        stored = {
            (r["exchange"], r["symbol"], micros_from_datetime(r["bar_start"])): r
            for r in self.table("gold.ohlcv_1m")
        }
        assert set(stored) == set(bars)
        for key, bar in bars.items():
            assert {n: stored[key][n] for n in bar.__dataclass_fields__} == bar.__dict__, key
        day = self.table("gold.ohlcv_1d")
        assert sum(b["trade_count"] for b in day) == len(gold)
        assert sum(b["volume"] for b in day) == sum((r["quantity"] for r in gold), Decimal(0))
        assert raw_topic("kraken", self.prefix) in {r["kafka_topic"] for r in gold}


def expected_ids(ledger: list[LedgerEntry], per_symbol: int) -> dict[tuple[str, str], set[int]]:
    """Every id from each symbol's first ledger trade on (the exchange's ids follow each other per
    symbol, :data:`ID_STEP` apart): the ones never sent were made meanwhile and come from REST.
    Where the ids are the symbol's own, that runs to the last trade the market made (the
    simulator makes ``per_symbol`` a symbol), which the history check recovers when the ingest
    was away at the end; elsewhere (Bybit) to the last trade sent."""
    ids: dict[tuple[str, str], list[int]] = defaultdict(list)
    for entry in ledger:
        assert entry.trade_id is not None
        ids[(entry.exchange, unified(entry).symbol)].append(entry.trade_id)
    expected = {}
    for key, found in ids.items():
        last = max(found)
        if key[0] not in ID_STEP:
            last = max(last, last_made(key[0], min(found), per_symbol))
        expected[key] = set(range(min(found), last + 1, ID_STEP.get(key[0], 1)))
    return expected


def last_made(exchange: str, sent_id: int, per_symbol: int) -> int:
    """The id of the last trade the simulator's market makes for the symbol that sent
    ``sent_id`` (its ids start where its seeded generator starts them)."""
    for instrument in catalog(exchange):
        first = SymbolGenerator(instrument, SEED, ID_BASE).next_id
        if first <= sent_id < first + per_symbol:
            return first + per_symbol - 1
    raise AssertionError(f"no {exchange} symbol of the simulator makes trade {sent_id}")


def unified(entry: LedgerEntry) -> Trade:
    """The ledger trade as K2's own normalisation makes it."""
    protocol = exchange_entry(entry.exchange).default_protocol
    raw = RawTrade(
        entry.exchange,
        entry.symbol,
        entry.trade_id,
        entry.fields,
        Envelope(entry.emit_us, entry.connection, 0, protocol),  # type: ignore[arg-type]
    )
    normalise = exchange_entry(entry.exchange).module("normalise").normalise_trade
    if entry.exchange == "binance":
        return normalise(raw, time_unit="MICROSECOND")  # type: ignore[no-any-return]
    return normalise(raw)  # type: ignore[no-any-return]
