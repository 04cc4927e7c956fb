"""The OKX ingest against a real broker, a real registry and the simulator: what is in Kafka is
compared with the simulator's ledger and its REST history, after disconnects and lost ids, and
with every instrument the exchange lists."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest

from k2.config import Settings
from k2.simulator.faults import FaultRule
from k2.simulator.instruments import catalog
from k2.simulator.server import Simulator
from k2.stack.manager import Stack
from k2.transport.topics import gaps_topic, raw_topic
from tests.simulated import simulator_configs

from .test_ingest import (
    Landed,
    caught_up,
    delivered,
    ingest_with_simulator,
    lane,
    ledger_of,
    read_topic,
)
from .test_ingest_scale import Running, settled

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

OKX = ("BTC-USDT", "ETH-USDT")


sim_config = simulator_configs(rate=400, skew=0.0, okx_symbols=OKX)


def okx_id(record: Landed) -> int:
    return int(record.value["trade_id"])


def test_every_ledger_trade_lands_once_in_order(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Every trade the simulator sent is one record, its values the strings OKX sent, keyed by
    instrument (one partition each), in id order."""
    private = lane(settings, "okx", okx={"symbols": OKX})
    config = sim_config(tmp_path, trades_per_symbol=800)
    ledger_path = tmp_path / "ledger.jsonl"

    ingest_with_simulator(private, "okx", config, caught_up(ledger_path, "okx"))
    ledger = ledger_of(ledger_path, "okx")
    assert len(ledger) > 300  # trades before the subscription are not sent (no snapshot)
    landed = read_topic(private, raw_topic("okx", private.kafka.topic_prefix))
    got = {(r.value["exchange_symbol"], r.value["trade_id"]) for r in landed}
    missing = [(e.symbol, e.trade_id) for e in ledger if (e.symbol, str(e.trade_id)) not in got]
    assert len(landed) == len(got) == len(ledger), f"not in Kafka: {missing[:10]}"
    expected = {(e.symbol, str(e.trade_id)): e for e in ledger}
    partitions: dict[str, set[int]] = defaultdict(set)
    for record in landed:
        v = record.value
        entry = expected.pop((v["exchange_symbol"], v["trade_id"]))
        f = entry.fields
        assert record.key == entry.symbol == f["instId"]
        assert (v["price"], v["quantity"], v["side"], v["ts"], v["source"]) == (
            f["px"], f["sz"], f["side"], f["ts"], f["source"],
        )  # fmt: skip
        assert (v["channel"], v["protocol"]) == ("trades-all", "okx-trades-all")
        assert v["message_id"] == f"okx:{entry.symbol}:{entry.trade_id}"
        assert v["count"] is None and v["seq_id"] is None and len(v["connection_id"]) == 8
        partitions[entry.symbol].add(record.partition)
    assert not expected
    assert all(len(p) == 1 for p in partitions.values())
    for symbol in OKX:
        ordered = sorted((r for r in landed if r.key == symbol), key=lambda r: r.offset)
        ids = [okx_id(r) for r in ordered]
        assert ids == sorted(ids) == list(range(ids[0], ids[0] + len(ids)))


def test_disconnects_and_lost_ids_are_backfilled_from_history(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Ids OKX never sent (lost, or traded while reconnecting) come from history-trades: every
    id from the first in Kafka to the last is there once, the filled ones as okx-rest."""
    private = lane(settings, "okxbackfill", okx={"symbols": OKX})
    drop = FaultRule(protocol="okx", connections=2, drop_after_trades=150)
    config = sim_config(tmp_path, rate=600, faults=(drop,), lose_every=13, okx_rest_limit=0)

    service = ingest_with_simulator(private, "okx", config, lambda s: delivered(s) >= 1500)
    prefix = private.kafka.topic_prefix
    landed = read_topic(private, raw_topic("okx", prefix))
    for symbol in OKX:
        ids = [okx_id(r) for r in landed if r.key == symbol]
        assert sorted(set(ids)) == list(range(min(ids), max(ids) + 1)), symbol
    assert len({r.value["message_id"] for r in landed}) == len(landed)
    backfilled = [r for r in landed if r.value["protocol"] == "okx-rest"]
    assert backfilled and all(r.value["channel"] is None for r in backfilled)
    assert sum(c.backfilled for c in service.state.symbols.values()) == len(backfilled)
    sent = {(e.symbol, e.trade_id) for e in ledger_of(config.ledger_path or Path(), "okx")}
    assert not {(r.key, okx_id(r)) for r in backfilled} & sent
    gaps = read_topic(private, gaps_topic(prefix))
    assert gaps and all(g.value["backfilled"] for g in gaps)
    assert {g.value["detected_by"] for g in gaps} >= {"sequence", "reconnect"}


def test_every_instrument_is_ingested_over_connections_within_limits(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """``*``: every one of the 700 listed instruments, three connections of at most 300, and
    every trade the simulator sent is in Kafka once."""
    listed = tuple(inst.symbol for inst in catalog("okx"))
    private = lane(settings, "allokx", okx={"symbols": ("*",)})
    config = sim_config(tmp_path, okx_symbols=listed, rate=700, trades_per_symbol=10)

    async def scenario() -> list[int]:
        async with Simulator(config) as simulator:
            running = Running(private, "okx", simulator)
            await running.until(running.connected, 90, "every connection subscribed")
            sizes = sorted(len(lane.symbols) for lane in running.lanes)
            await running.until(settled(config.ledger_path or Path(), "okx"), 90, "trading")
            sent = len(ledger_of(config.ledger_path or Path(), "okx"))
            await running.until(lambda: delivered(running.service) >= sent, 60, "delivery")
            await running.finish()
            return sizes

    sizes = asyncio.run(scenario())
    assert sizes == [100, 300, 300]
    ledger = ledger_of(config.ledger_path or Path(), "okx")
    landed = read_topic(private, raw_topic("okx", private.kafka.topic_prefix))
    assert len(landed) == len(ledger) > 0
    assert {(r.key, okx_id(r)) for r in landed} == {(e.symbol, e.trade_id) for e in ledger}
