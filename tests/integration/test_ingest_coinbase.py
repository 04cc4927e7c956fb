"""The Coinbase ingest against a real broker, a real registry and the simulator: what is in Kafka
is compared with the simulator's ledger after drops, lost messages, lost ids, a restart, and
with every product of the exchange subscribed within its limits."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from k2.config import Settings
from k2.simulator.faults import FaultRule
from k2.simulator.instruments import catalog
from k2.simulator.server import Simulator
from k2.stack.manager import Stack
from k2.transport.topics import dlq_topic, gaps_topic, raw_topic
from tests.polling import wait_until_async
from tests.simulated import simulator_configs

from .test_ingest import (
    Landed,
    caught_up,
    delivered,
    ingest_until,
    ingest_with_simulator,
    lane,
    ledger_of,
    read_topic,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PRODUCTS = ("BTC-USD", "ETH-USD")
EVERY_PRODUCT = tuple(inst.symbol for inst in catalog("coinbase"))


# The ingest tests' simulator (an even rate), listing Coinbase's products only.
config = simulator_configs(rate=400, skew=0.0, coinbase_symbols=PRODUCTS)


def ids_of(landed: Iterable[Landed]) -> dict[str, list[int]]:
    """Each product's trade ids in Kafka, in offset order."""
    by_product: dict[str, list[int]] = defaultdict(list)
    for record in sorted(landed, key=lambda r: (r.partition, r.offset)):
        by_product[record.key or ""].append(int(record.value["trade_id"]))
    return by_product


def assert_every_id_through(landed: list[Landed], last: dict[str, int]) -> None:
    """Every id from each product's first in Kafka to ``last[product]`` is there, once."""
    for product, ids in ids_of(landed).items():
        expected = set(range(min(ids), last[product] + 1))
        assert not expected - set(ids), f"{product}: missing {sorted(expected - set(ids))[:20]}"
        assert len(ids) == len(set(ids)), f"{product}: an id twice"


def test_every_ledger_trade_lands_once_in_order(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Each trade sent lands once, as sent, keyed by its product, in id order per product."""
    private = lane(settings, "ncoinbase", coinbase={"symbols": PRODUCTS})
    ledger_path = tmp_path / "ledger.jsonl"
    ingest_with_simulator(
        private,
        "coinbase",
        config(tmp_path, trades_per_symbol=500),
        caught_up(ledger_path, "coinbase"),
    )
    ledger = [e for e in ledger_of(ledger_path, "coinbase") if not e.snapshot]
    assert len(ledger) > 500
    landed = read_topic(private, raw_topic("coinbase", private.kafka.topic_prefix))
    got = {(r.value["exchange_symbol"], int(r.value["trade_id"])): r for r in landed}
    assert len(got) == len(landed)
    for entry in ledger:
        record = got[(entry.symbol, entry.trade_id)]
        value, fields = record.value, entry.fields
        assert record.key == entry.symbol
        assert {k: value[k] for k in ("trade_id", "price", "size", "side", "time")} == {
            k: fields[k] for k in ("trade_id", "price", "size", "side", "time")
        }
        assert value["message_id"] == f"coinbase:{entry.symbol}:{entry.trade_id}"
        assert value["protocol"] == "coinbase-advanced" and value["event_type"] == "update"
        assert isinstance(value["sequence_num"], int) and value["timestamp"].endswith("Z")
    for ids in ids_of(landed).values():
        assert ids == sorted(ids)


def test_drops_lost_messages_and_lost_ids_are_backfilled_from_the_history(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Dropped connections, garbled messages (a jump of sequence_num) and ids the socket never
    sent are all filled from the history, whose rows carry the maker's side."""
    private = lane(settings, "cbgaps", coinbase={"symbols": PRODUCTS})
    drop = FaultRule(protocol="coinbase", connections=2, drop_after_trades=150)
    garble = FaultRule(protocol="coinbase", garble_every=30)
    sim = config(tmp_path, rate=600, faults=(drop, garble), lose_every=13,
                 lose_exchanges=("coinbase",))  # fmt: skip
    with capture_logs() as logs:
        service = ingest_with_simulator(private, "coinbase", sim, lambda s: delivered(s) >= 1500)
    prefix = private.kafka.topic_prefix
    landed = read_topic(private, raw_topic("coinbase", prefix))
    last = {p: max(ids) for p, ids in ids_of(landed).items()}
    assert set(last) == set(PRODUCTS)
    assert_every_id_through(landed, last)
    backfilled = [r.value for r in landed if r.value["protocol"] == "coinbase-rest"]
    assert backfilled and all(r["side"] in ("buy", "sell") for r in backfilled)
    assert sum(c.backfilled for c in service.state.symbols.values()) == len(backfilled)
    gaps = [g.value for g in read_topic(private, gaps_topic(prefix))]
    assert gaps and all(g["backfilled"] for g in gaps)
    assert {"reconnect", "sequence"} <= {g["detected_by"] for g in gaps}
    assert read_topic(private, dlq_topic("coinbase", prefix)), "garbled messages are dead letters"
    assert any(e["event"] == "ws_messages_lost_detected" for e in logs)


def test_a_restart_resumes_from_the_last_id_in_kafka(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Trades made while the ingest was down are found from the last id in the topic and
    backfilled, so the topic holds every id once."""
    private = lane(settings, "cbresume", coinbase={"symbols": PRODUCTS})

    async def scenario() -> None:
        async with Simulator(config(tmp_path, rate=200)) as sim:
            await ingest_until(private, "coinbase", sim, lambda s: delivered(s) >= 200)
            histories = sim.market("coinbase").histories
            before = {p: histories[p].trade_end for p in PRODUCTS}
            await wait_until_async(
                lambda: all(histories[p].trade_end > before[p] + 100 for p in PRODUCTS),
                30,
                "trades made while the ingest is down",
            )
            with capture_logs() as logs:
                again = await ingest_until(
                    private,
                    "coinbase",
                    sim,
                    lambda s: all(c.backfilled for c in s.state.symbols.values())
                    and len(s.state.symbols) == len(PRODUCTS),
                )
            assert any(e["event"] == "ingest_resumed_from_topic" for e in logs)
            assert all(c.backfilled > 0 for c in again.state.symbols.values())

    asyncio.run(scenario())
    landed = read_topic(private, raw_topic("coinbase", private.kafka.topic_prefix))
    last = {p: max(ids) for p, ids in ids_of(landed).items()}
    assert_every_id_through(landed, last)


def test_every_product_is_ingested_over_connections_within_coinbases_limits(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """``*``: all 640 products over seven connections, opened and subscribed inside 8
    connections and 8 messages a second (the simulator refuses more messages than that)."""
    private = lane(settings, "cball", coinbase={"symbols": ("*",)})
    sim = config(tmp_path, rate=2000, skew=1.0, coinbase_symbols=None, ledger_path=None)

    async def scenario() -> tuple[int, list[float], int]:
        async with Simulator(sim) as running:
            opened: list[float] = []

            def subscribed(service: Any) -> bool:
                opened[:] = sorted(s.opened for s in running.sessions("coinbase"))
                client = service._client
                return (
                    client is not None
                    and len(client.lanes) == 7
                    and all(lane.connected for lane in client.lanes)
                    and len(service.state.symbols) >= 100
                )

            service = await ingest_until(private, "coinbase", running, subscribed, 90)
            assert service._client is not None
            return len(service._client.lanes), opened, delivered(service)

    lanes, opened, count = asyncio.run(scenario())
    assert lanes == 7 and len(opened) == 7 and count > 0
    assert max(sum(1 for t in opened if start <= t < start + 1.0) for start in opened) <= 8
    landed = read_topic(private, raw_topic("coinbase", private.kafka.topic_prefix))
    assert len({r.key for r in landed}) >= 100 and set(r.key for r in landed) <= set(EVERY_PRODUCT)
