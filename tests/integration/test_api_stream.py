"""The live trade stream against a real broker, registry, simulator and ingest: a client that
connected first gets every ledger trade of its symbol in order, and a client that joins midway
completes its view from history without a gap or a duplicate."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import websockets
from confluent_kafka.admin import AdminClient, NewTopic

from k2.api.metrics import ApiMetrics
from k2.api.stream import LiveTrades, _as_written
from k2.config import ApiSettings, Settings
from k2.exchanges import exchange_entry
from k2.observability.metrics import Metrics
from k2.simulator.server import Simulator
from k2.stack.manager import Stack
from k2.transport.topics import raw_topic
from tests.e2e.ledger_run import settings_from
from tests.integration import gold_rows
from tests.integration.api_server import ApiServer
from tests.integration.lanes import Lane, RawProducer, binance_trade, to_record
from tests.integration.test_ingest import (
    caught_up,
    delivered,
    ingest_until,
    lane,
    ledger_of,
    read_topic,
    sim_config,
)
from tests.polling import Pending, log_tail, wait_until, wait_until_async

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SYMBOL = "BTCUSDT"


async def collect(url: str, into: list[dict[str, Any]], opened: asyncio.Event) -> None:
    """Every message of one stream connection, each trade of a batch on its own, until
    cancelled."""
    async with websockets.connect(url) as socket:
        opened.set()
        async for text in socket:
            message = json.loads(text)
            if message["type"] == "trades":
                into.extend({"type": "trade", **trade} for trade in message["trades"])
            else:
                into.append(message)


def land_gold(settings: Settings, catalog: Any) -> int:
    """What the streaming job would do: every raw record normalised into gold.trades."""
    topic = raw_topic("binance", settings.kafka.topic_prefix)
    normalise = exchange_entry("binance").module("normalise").trade_from_record
    found = {}
    for record in read_topic(settings, topic):
        trade = normalise(_as_written(record.value))
        found[trade.message_id] = trade
    gold_rows.append(catalog, "gold.trades", gold_rows.from_trades(found.values(), topic))
    return len(found)


def history(base: str, until: str, start: str) -> tuple[list[dict[str, Any]], bool]:
    """Every trade before the stream's first one, and whether Gold already holds that one."""
    rows, cursor, landed = [], None, False
    params = {"exchange": "binance", "symbol": "BTC/USDT", "start": start, "until": until}
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = httpx.get(f"{base}/v1/trades", params=query, timeout=30).json()
        rows += body["data"]
        landed = body["until_landed"]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows, landed


def test_stream_delivers_every_ledger_trade_in_order_and_joins_history(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """The live trade stream gives a client every trade the exchange sent, in order with exact
    values, and a client joining late fills the start from Gold with no gap and no duplicate."""
    private = lane(settings, "apistream", binance={"symbols": (SYMBOL,)})
    private = private.model_copy(
        update={
            "stack": private.stack.model_copy(update={"home": tmp_path / "home"}),
            "exchanges": ("binance",),
            "api": ApiSettings(refresh_interval_s=0.2),
        }
    )
    catalog = gold_rows.create_gold(private)
    config = sim_config(tmp_path, rate=200, trades_per_symbol=400, binance_symbols=(SYMBOL,))
    ledger_path = tmp_path / "ledger.jsonl"
    first: list[dict[str, Any]] = []
    joined: list[dict[str, Any]] = []

    async def scenario(ws_url: str) -> None:
        opened_first, opened_joined = asyncio.Event(), asyncio.Event()
        tasks = [asyncio.create_task(collect(ws_url, first, opened_first))]
        await asyncio.wait_for(opened_first.wait(), 60)
        settled = caught_up(ledger_path, "binance")

        def done(service: Any) -> bool:
            if len(tasks) == 1 and delivered(service) >= 120:
                tasks.append(asyncio.create_task(collect(ws_url, joined, opened_joined)))
            return settled(service)

        async with Simulator(config) as sim:
            await ingest_until(private, "binance", sim, done, timeout_s=120)
        expected = len(ledger_of(ledger_path, "binance"))

        def streamed_every_trade() -> bool | Pending:
            streamed = sum(m["type"] == "trade" for m in first)
            return streamed >= expected or Pending(f"{streamed} of {expected} trades")

        try:
            await wait_until_async(
                streamed_every_trade, 30, "the first client to get every trade", every_s=0.1
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    with ApiServer(private) as base:
        ws_url = base.replace("http", "ws") + "/v1/stream/trades?exchange=binance&symbol=BTC/USDT"
        asyncio.run(scenario(ws_url))
        ledger = [e for e in ledger_of(ledger_path, "binance") if e.symbol == SYMBOL]
        assert len(ledger) >= 200
        assert first[0]["type"] == "start"
        streamed = [m for m in first if m["type"] == "trade"]
        assert [int(m["trade_id"]) for m in streamed] == [e.trade_id for e in ledger]
        for message, entry in zip(streamed, ledger, strict=True):
            assert Decimal(message["price"]) == Decimal(str(entry.fields["p"]))
            assert Decimal(message["quantity"]) == Decimal(str(entry.fields["q"]))
        assert first[0]["first_message_id"] == streamed[0]["message_id"]

        land_gold(private, catalog)
        start = joined[0]
        assert start["type"] == "start" and joined[1]["message_id"] == start["first_message_id"]
        hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

        def history_up_to_the_stream() -> tuple[list[dict[str, Any]]] | Pending:
            try:
                before, landed = history(base, start["until"], hour_ago)
            except (KeyError, TypeError):  # the new symbol is not in the summary yet (404)
                return Pending("the symbol is not in the summary yet")
            return (before,) if landed else Pending(f"{len(before)} trades before, not landed")

        (before,) = wait_until(
            history_up_to_the_stream, 30, "Gold to say it holds the stream's first trade"
        )
        live = [m for m in joined if m["type"] == "trade"]
        combined = [int(r["trade_id"]) for r in before] + [int(m["trade_id"]) for m in live]
        assert before and live
        assert combined == [e.trade_id for e in ledger]  # no gap, no duplicate, in order


def test_the_stream_starts_while_a_partition_has_no_leader_and_reads_it_from_its_end_once_back(
    cluster: Any, tmp_path: Path
) -> None:
    """A raw topic whose only replica's broker is down does not stop the live stream: a client
    subscribes at once, and once the broker is back it gets that partition's new trades in
    order, none of the trades written before it subscribed."""
    env = {**cluster.environment(), "K2_HOME": str(tmp_path / "home")}
    settings = settings_from(env)
    settings = settings.model_copy(
        update={
            "exchanges": ("binance",),
            "kafka": settings.kafka.model_copy(update={"topic_prefix": "test.leaderless."}),
        }
    )
    topic = raw_topic("binance", settings.kafka.topic_prefix)
    admin = AdminClient(settings.kafka_config())
    admin.create_topics([NewTopic(topic, 1, replica_assignment=[[2]])])[topic].result(timeout=60)
    producer = RawProducer(Lane(settings))
    t0 = 1_764_547_200_000_000

    def send(first: int, count: int) -> None:
        trades = [
            binance_trade(SYMBOL, i, "100.5", "0.25", t0 + i) for i in range(first, first + count)
        ]
        producer.send([to_record(trade) for trade in trades], "binance")

    wait_until(lambda: _leader(admin, topic) == 2 or Pending(_leader(admin, topic)), 60, "a leader")
    send(1, 5)  # written before anyone subscribed: never streamed
    broker = cluster.service("kafka-2")
    pid = broker.process.info().pid
    psutil.Process(pid).kill()
    psutil.Process(pid).wait(timeout=30)
    live = LiveTrades(
        settings.kafka_config(),
        settings.registry_config(),
        settings.exchanges,
        settings.kafka.topic_prefix,
        settings.api.stream_queue_max,
        ApiMetrics(Metrics("api")),
    )
    received: list[int] = []

    async def scenario() -> int:
        subscriber = await live.subscribe("binance", "BTC/USDT")
        assert broker.start()
        wait_until(
            lambda: _leader(admin, topic) == 2 or Pending(_leader(admin, topic)),
            180,
            "the restarted broker leading the topic again",
            context=lambda: log_tail(broker.process.log_file),
        )
        next_id = 100

        async def read_again() -> bool | Pending:
            nonlocal next_id
            send(next_id, 1)
            next_id += 1
            await _drain(subscriber.queue, received, 0.5)
            return bool(received) or Pending(f"trades 100 to {next_id - 1} sent, none read")

        await wait_until_async(
            read_again, 60, "the stream to read the partition once its broker was back", every_s=0
        )
        send(next_id, 20)
        last = next_id + 19

        async def read_to_the_last() -> bool | Pending:
            await _drain(subscriber.queue, received, 0.5)
            return received[-1] >= last or Pending(f"read up to {received[-1]}")

        await wait_until_async(read_to_the_last, 30, f"the stream to read up to {last}", every_s=0)
        return last

    try:
        last = asyncio.run(scenario())
    finally:
        live.stop()
        broker.start()
    assert live.error is None
    assert received[0] >= 100, f"trades written before the client subscribed: {received[:5]}"
    assert received == list(range(received[0], last + 1)), received


def _leader(admin: AdminClient, topic: str) -> int:
    return int(admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader)


async def _drain(queue: asyncio.Queue[Any], into: list[int], wait_s: float) -> None:
    """The trade ids of every ``trades`` message queued within ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            text = await asyncio.wait_for(queue.get(), left)
        except TimeoutError:
            return
        assert isinstance(text, str), f"the stream ended: {text}"
        message = json.loads(text)
        if message["type"] == "trades":
            into.extend(int(trade["trade_id"]) for trade in message["trades"])
