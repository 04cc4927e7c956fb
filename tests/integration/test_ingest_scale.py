"""The ingest at exchange scale against a real broker, registry and the simulator: every symbol of a
exchange over several connections, listings that change, shards, gaps filled beside the live feed,
and memory that stays bounded while Kafka is down. Kafka is compared with the simulator's ledger.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from k2.config import Settings
from k2.exchanges.factory import adapter_for, feed_spec
from k2.ingest.service import IngestService
from k2.observability.metrics import IngestMetrics, Metrics
from k2.simulator.instruments import catalog
from k2.simulator.server import Simulator
from k2.stack.manager import Stack
from k2.stack.ports import free_port
from k2.transport.topics import raw_topic
from tests.polling import wait_until_async
from tests.simulated import SimulatorThread, simulator_configs

from .test_ingest import (
    assert_complete,
    delivered,
    ingest_env,
    lane,
    ledger_of,
    read_topic,
    scrape,
    start_ingest,
    trade_id,
    wait_metric,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

BINANCE_ALL = tuple(inst.symbol for inst in catalog("binance"))
KRAKEN_ALL = tuple(inst.symbol for inst in catalog("kraken"))


class Running:
    """One ingest service on this loop, stopped as SIGTERM would stop it."""

    def __init__(self, settings: Settings, exchange: str, sim: Simulator) -> None:
        private = settings.model_copy(
            update={
                "ingest": settings.ingest.model_copy(
                    update={"simulator_url": sim.urls.binance_rest}
                )
            }
        )
        adapter = adapter_for(exchange, private.ingest)
        metrics = IngestMetrics(Metrics(f"ingest-{exchange}"), exchange)
        self.metrics = metrics
        self.service = IngestService(private, adapter, feed_spec(private.ingest, adapter), metrics)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.service.run(self.stop))

    async def until(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        def check() -> bool:
            if self.task.done():
                self.task.result()
                raise AssertionError("the ingest stopped")
            return done()

        await wait_until_async(check, timeout_s, what, context=self.describe)

    def describe(self) -> str:
        """What the ingest has done so far: connections and per-symbol counts."""
        counts = list(self.service.state.symbols.values())
        totals = {
            "lanes connected": [lane.connected for lane in self.lanes],
            "symbols": len(counts),
            "received": sum(c.received for c in counts),
            "delivered": sum(c.delivered for c in counts),
            "backfilled": sum(c.backfilled for c in counts),
        }
        return f"the ingest so far: {totals}"

    async def finish(self) -> None:
        self.stop.set()
        assert await self.task == 0

    @property
    def lanes(self) -> list[Any]:
        client = self.service._client
        return client.lanes if client is not None else []

    def connected(self) -> bool:
        return bool(self.lanes) and all(lane.connected for lane in self.lanes)


def settled(ledger: Path, exchange: str, quiet_s: float = 2.0) -> Callable[[], bool]:
    """True once the ledger stopped growing for ``quiet_s``."""
    seen = {"count": -1, "since": time.monotonic()}

    def done() -> bool:
        count = len(ledger_of(ledger, exchange))
        if count != seen["count"]:
            seen["count"], seen["since"] = count, time.monotonic()
        return count > 0 and time.monotonic() - seen["since"] >= quiet_s

    return done


sim = simulator_configs(skew=0.0, binance_weight_limit=0, kraken_rest_limit=0)


def test_every_binance_symbol_is_ingested_over_connections_within_limits(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """1,998 symbols at 1 trade/s each; a listing and a delisting while it runs."""
    listed, new = BINANCE_ALL[:1998], BINANCE_ALL[1998]
    private = lane(settings, "allbinance", binance={"symbols": ("*",), "reference_refresh_s": 2})
    config = sim(tmp_path, binance_symbols=listed, rate=1998, trades_per_symbol=12)

    async def scenario() -> tuple[list[Any], list[str]]:
        async with Simulator(config) as simulator:
            running = Running(private, "binance", simulator)
            await running.until(running.connected, 90, "every connection subscribed")
            lanes = [list(lane.symbols) for lane in running.lanes]
            simulator.list_symbol("binance", new)
            simulator.delist_symbol("binance", listed[-1])
            client = running.service._client
            assert client is not None
            await running.until(
                lambda: new in client.natives and listed[-1] not in client.natives,
                60,
                "the listing change",
            )
            streams = {s for session in simulator.sessions("binance") for s in session.streams}
            await running.until(settled(config.ledger_path or Path(), "binance"), 90, "trading")
            sent = len(ledger_of(config.ledger_path or Path(), "binance"))
            await running.until(lambda: delivered(running.service) >= sent, 60, "delivery")
            await running.finish()
            return lanes, sorted(streams)

    lanes, streams = asyncio.run(scenario())
    assert len(lanes) == 2 and all(len(symbols) <= 1024 for symbols in lanes)
    assert sorted(s for symbols in lanes for s in symbols) == sorted(listed)
    assert f"{new.lower()}@trade" in streams and f"{listed[-1].lower()}@trade" not in streams
    ledger = ledger_of(config.ledger_path or Path(), "binance")
    landed = read_topic(private, raw_topic("binance", private.kafka.topic_prefix))
    assert len(landed) == len(ledger)
    assert {(r.key, trade_id(r.value)) for r in landed} == {(e.symbol, e.trade_id) for e in ledger}
    assert {r.key for r in landed} >= set(listed[:-1]) | {new}


def test_every_kraken_pair_is_ingested_over_connections_of_at_most_250(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """600 pairs on Kraken v2: three connections, every pair delivers, N sent = N in Kafka."""
    listed = KRAKEN_ALL[:600]
    private = lane(settings, "allkraken", kraken={"symbols": ("*",)})
    config = sim(tmp_path, kraken_symbols=listed, rate=600, trades_per_symbol=10)

    async def scenario() -> list[int]:
        async with Simulator(config) as simulator:
            running = Running(private, "kraken", simulator)
            await running.until(running.connected, 90, "every connection subscribed")
            sizes = [len(lane.symbols) for lane in running.lanes]
            await running.until(settled(config.ledger_path or Path(), "kraken"), 90, "trading")
            sent = len(ledger_of(config.ledger_path or Path(), "kraken"))
            await running.until(lambda: delivered(running.service) >= sent, 60, "delivery")
            await running.finish()
            return sizes

    sizes = asyncio.run(scenario())
    assert sizes == [250, 250, 100]
    ledger = [e for e in ledger_of(config.ledger_path or Path(), "kraken") if not e.snapshot]
    landed = read_topic(private, raw_topic("kraken", private.kafka.topic_prefix))
    present = {(r.key, trade_id(r.value)) for r in landed}
    assert len(present) == len(landed)
    assert {(e.symbol, e.trade_id) for e in ledger} <= present
    v2_names = {inst.v2_symbol for inst in catalog("kraken")[:600]}
    assert {r.key for r in landed} == v2_names


def test_two_shards_and_a_restart_deliver_every_trade_and_never_share_a_symbol(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Shards 0/2 and 1/2 of 300 symbols; shard 1 is stopped and started again mid-run."""
    listed = BINANCE_ALL[:300]
    shards = [
        lane(settings, "shards", binance={"symbols": ("*",)}, shard=f"{index}/2")
        for index in range(2)
    ]
    # 5 trades/s per symbol for 15 s: still trading when shard 1 stops, also on a loaded
    # machine where starting two ingests takes seconds.
    config = sim(tmp_path, binance_symbols=listed, rate=1500, trades_per_symbol=75)

    async def scenario() -> list[set[str]]:
        async with Simulator(config) as simulator:
            first, second = (
                Running(shards[0], "binance", simulator),
                Running(shards[1], "binance", simulator),
            )
            await first.until(first.connected, 60, "shard 0 subscribed")
            await second.until(second.connected, 60, "shard 1 subscribed")
            await asyncio.sleep(2.0)
            owned = [set(first.service.state.symbols), set(second.service.state.symbols)]
            await second.finish()
            await asyncio.sleep(1.5)  # shard 1's symbols trade while it is down
            again = Running(shards[1], "binance", simulator)
            await again.until(settled(config.ledger_path or Path(), "binance"), 90, "trading")
            sent = len(ledger_of(config.ledger_path or Path(), "binance"))

            def both() -> int:
                return delivered(first.service) + delivered(second.service)

            await again.until(
                lambda: both() + delivered(again.service) >= sent, 60, "every trade delivered"
            )
            # one REST request per symbol of shard 1 fills what it missed while down
            await again.until(lambda: again.service._backfills.waiting == 0, 120, "backfill")
            owned[1] |= set(again.service.state.symbols)
            await again.finish()
            await first.finish()
            return owned

    owned = asyncio.run(scenario())
    assert not owned[0] & owned[1]
    assert owned[0] | owned[1] == set(listed)
    landed = read_topic(shards[0], raw_topic("binance", shards[0].kafka.topic_prefix))
    last = {s: max(trade_id(r.value) for r in landed if r.key == s) for s in listed}
    assert_complete(landed, listed, last)
    present = {(r.key, trade_id(r.value)) for r in landed}
    for entry in ledger_of(config.ledger_path or Path(), "binance"):
        assert (entry.symbol, entry.trade_id) in present
    assert any(r.value["protocol"] == "binance-rest" for r in landed), "the restart gap"


def test_lost_ids_are_backfilled_while_the_live_feed_stays_within_a_second(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """The exchange loses 1% of ids at 1,000 trades/s; the feed keeps up, REST fills the rest."""
    symbols = BINANCE_ALL[:2]
    private = lane(settings, "lost", binance={"symbols": symbols})
    # 500 trades/s per symbol for 12 s, then trading stops and what is waiting drains
    config = sim(
        tmp_path, binance_symbols=symbols, rate=1000, lose_every=100, trades_per_symbol=6000
    )

    async def scenario() -> tuple[list[float], int]:
        async with Simulator(config) as simulator:
            running = Running(private, "binance", simulator)
            await running.until(running.connected, 60, "subscribed")
            lags: list[float] = []
            for _ in range(50):  # 10 s, sampled as a dashboard would
                await asyncio.sleep(0.2)
                newest = running.service._newest_us
                if newest is not None:
                    lags.append(time.time() - newest / 1e6)
            await running.until(settled(config.ledger_path or Path(), "binance"), 60, "the end")
            backfilled = sum(c.backfilled for c in running.service.state.symbols.values())
            await running.finish()
            return lags, backfilled

    lags, backfilled = asyncio.run(scenario())
    ordered = sorted(lags)
    assert ordered and ordered[int(len(ordered) * 0.99) - 1] <= 1.0, ordered[-5:]
    assert backfilled > 50
    landed = read_topic(private, raw_topic("binance", private.kafka.topic_prefix))
    last = {s: max(trade_id(r.value) for r in landed if r.key == s) for s in symbols}
    assert_complete(landed, symbols, last)


def test_every_symbol_with_kafka_stopped_stays_under_512_mb_and_loses_nothing(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """2,000 symbols at 4,000 trades/s, the broker stopped for 12 s: RSS bounded, then all in."""
    runner = SimulatorThread(
        sim(tmp_path, binance_symbols=BINANCE_ALL, rate=4000, binance_weight_limit=0)
    )
    private = lane(settings, "allout", binance={"symbols": ("*",)}, queue_max_messages=20_000)
    port = free_port()
    log = tmp_path / "ingest.log"
    with runner as simulator:
        ingest = start_ingest(ingest_env(private, simulator), log, port)
        proc = psutil.Process(ingest.pid)
        try:
            wait_metric(port, "k2_ingest_connected", 1, 120, "subscribed", log)
            wait_metric(port, "k2_ingest_trades_delivered_total", 5001, 60, "flow", log)
            broker = stack.services[0]
            assert broker.stop()
            peak = 0
            outage_end = time.monotonic() + 12
            while time.monotonic() < outage_end:
                peak = max(peak, proc.memory_info().rss)
                time.sleep(0.2)
            assert broker.start()
            before = scrape(port, "k2_ingest_trades_delivered_total")
            wait_metric(
                port,
                "k2_ingest_trades_delivered_total",
                before + 20_001,
                120,
                "delivery after the broker returned",
                log,
            )
            peak = max(peak, proc.memory_info().rss)
            ingest.terminate()
            assert ingest.wait(60) == 0, log.read_text()[-3000:]
        finally:
            if ingest.poll() is None:
                ingest.kill()
    assert peak < 512 * 2**20, peak
    landed = read_topic(private, raw_topic("binance", private.kafka.topic_prefix))
    traded = sorted({r.key or "" for r in landed})
    last = {s: max(trade_id(r.value) for r in landed if r.key == s) for s in traded}
    assert_complete(landed, tuple(traded), last)
