"""The Bybit ingest against a real broker, a real registry and the simulator: what is in Kafka is
compared with the simulator's ledger and history after disconnects, lost ids and a restart,
and each break in the feed is a time-interval gap event saying what recent-trade could fill."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from k2.config import Settings
from k2.domain import micros_from_datetime
from k2.exchanges.bybit.adapter import BybitAdapter
from k2.exchanges.bybit.config import BybitSettings
from k2.exchanges.contract import FeedSpec, Interval
from k2.ingest.service import IngestService
from k2.simulator.faults import FaultRule
from k2.simulator.ledger import read_ledger
from k2.simulator.market import SimTrade
from k2.simulator.server import Simulator
from k2.stack.manager import Stack
from k2.transport.topics import gaps_topic, raw_topic
from tests.polling import Pending, wait_until_async

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
from .test_simulator_bybit import SYMBOLS, sim_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def by_symbol(landed: list[Landed]) -> dict[str, list[Landed]]:
    """Each symbol's records in offset order (one partition per symbol)."""
    found: dict[str, list[Landed]] = defaultdict(list)
    for record in sorted(landed, key=lambda r: (r.partition, r.offset)):
        found[record.value["exchange_symbol"]].append(record)
    return found


def shared_id(trade: SimTrade, history_place: int) -> int:
    return trade.trade_id * 1000 + history_place


def test_every_ledger_trade_lands_once_in_order(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Each trade the simulator sent is in Kafka once, in the symbol's partition in id order,
    with every field as sent and its deterministic message_id."""
    private = lane(settings, "nbybit", bybit={"symbols": SYMBOLS})
    config = sim_config(tmp_path, rate=400, trades_per_symbol=500)
    ledger_path = tmp_path / "ledger.jsonl"

    ingest_with_simulator(private, "bybit", config, caught_up(ledger_path, "bybit"))
    ledger = ledger_of(ledger_path, "bybit")
    assert len(ledger) > 300  # trades made before the subscription are never sent
    landed = read_topic(private, raw_topic("bybit", private.kafka.topic_prefix))
    assert len(landed) == len(ledger)
    expected = {(e.symbol, e.fields["i"]): e for e in ledger}
    for record in landed:
        v = record.value
        f = expected.pop((v["exchange_symbol"], v["trade_id"])).fields
        assert record.key == v["exchange_symbol"]
        assert (v["price"], v["size"], v["side"], v["trade_time"], v["seq"]) == (
            f["p"], f["v"], f["S"], f["T"], f["seq"],
        )  # fmt: skip
        assert (v["block_trade"], v["rpi"], v["frame_ts"], v["frame_type"]) == (
            f["BT"], f["RPI"], f["ts"], f["type"],
        )  # fmt: skip
        assert v["message_id"] == f"bybit:{v['exchange_symbol']}:{f['i']}"
        assert v["protocol"] == "bybit-spot" and v["tick_direction"] is None
    assert not expected
    for records in by_symbol(landed).values():
        assert len({r.partition for r in records}) == 1
        ids = [int(r.value["trade_id"]) for r in records]
        assert ids == sorted(ids)


def _gaps(settings: Settings) -> list[dict[str, Any]]:
    """The gap events, their interval ends in µs."""
    found = []
    for record in read_topic(settings, gaps_topic(settings.kafka.topic_prefix)):
        gap = dict(record.value)
        for end in ("from_us", "to_us"):
            if gap[end] is not None:
                gap[end] = micros_from_datetime(gap[end])
        found.append(gap)
    return found


def _history_between(sim: Simulator, symbol: str, gap: dict[str, Any]) -> set[str]:
    """Ids (as Bybit sends them) of the symbol's trades matched strictly inside a gap's
    interval (in Bybit's ms), from the simulator's own history."""
    market = sim.market("bybit")
    place = list(market.instruments).index(symbol)
    low, high = gap["from_us"], gap["to_us"]
    return {
        str(shared_id(t, place))
        for t in market.histories[symbol].trades
        if low < (t.time_us // 1000) * 1000 < high
    }


def _within_any(record: Landed, gaps: list[dict[str, Any]]) -> bool:
    """The record's match time falls in one of its symbol's gap intervals (ends included)."""
    when = record.value["trade_time"] * 1000
    symbol = record.value["exchange_symbol"]
    return any(g["from_us"] <= when <= g["to_us"] for g in gaps if g["exchange_symbol"] == symbol)


def test_a_disconnect_is_an_interval_gap_filled_from_recent_trade(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """A dropped connection leaves a time-interval gap per symbol (ids cannot tell, being
    shared by every symbol); recent-trade still holds the interval at this rate, so every
    trade of it lands, backfilled, and the gap event says it was filled. Trades the exchange
    lost within a connection cannot be detected and stay missing, as on Bybit."""
    private = lane(settings, "bybitgap", bybit={"symbols": SYMBOLS})
    drop = FaultRule(protocol="bybit", connections=1, drop_after_trades=60)
    config = sim_config(tmp_path, rate=120, faults=(drop,), lose_every=25)

    async def scenario() -> tuple[IngestService, dict[str, set[str]], list[str]]:
        async with Simulator(config) as sim:
            service = await ingest_until(
                private,
                "bybit",
                sim,
                lambda s: sum(c.gaps for c in s.state.symbols.values()) >= 2 and delivered(s) > 300,
            )
            gaps = _gaps(private)
            inside = {g["exchange_symbol"]: _history_between(sim, g["exchange_symbol"], g)
                      for g in gaps}  # fmt: skip
            market = sim.market("bybit")
            lost = [
                str(shared_id(t, list(market.instruments).index(s)))
                for s in SYMBOLS
                for t in market.histories[s].trades
                if t.lost
            ]
            return service, inside, lost

    service, inside, lost = asyncio.run(scenario())
    gaps = _gaps(private)
    assert {g["exchange_symbol"] for g in gaps} == set(SYMBOLS)
    for gap in gaps:
        assert gap["first_missing_id"] is None and gap["from_us"] < gap["to_us"]
        assert gap["detected_by"] == "reconnect" and gap["backfilled"] is True, gap
        assert gap["reason"] is None
    landed = read_topic(private, raw_topic("bybit", private.kafka.topic_prefix))
    present = {r.value["trade_id"] for r in landed}
    rest = [r for r in landed if r.value["protocol"] == "bybit-rest"]
    for symbol, ids in inside.items():
        assert ids <= present, f"{symbol}: interval trades missing"
    assert all(_within_any(r, gaps) for r in rest)  # none when the reconnect missed nothing
    assert sum(c.backfilled for c in service.state.symbols.values()) == len(rest)
    assert sum(g["backfilled_count"] for g in gaps) == len(rest)
    outside = [i for i in lost if i not in set().union(*inside.values())]
    assert outside and not set(outside) & present, "lost ids are invisible on Bybit"


def test_an_interval_recent_trade_cannot_read_is_an_unfilled_gap_with_its_reason(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """With Bybit's REST refusing (HTTP 403 beyond its IP limit), the interval is published
    unfilled, with the reason, and the live feed goes on."""
    private = lane(settings, "bybit403", bybit={"symbols": SYMBOLS})
    drop = FaultRule(protocol="bybit", connections=1, drop_after_trades=30)
    # one REST request per 5 s: the ingest's instruments-info read spends it
    config = sim_config(tmp_path, rate=40, faults=(drop,), bybit_rest_limit=1)

    service = ingest_with_simulator(
        private,
        "bybit",
        config,
        lambda s: sum(c.gaps for c in s.state.symbols.values()) >= 2 and delivered(s) > 80,
    )
    gaps = _gaps(private)
    assert gaps and all(g["backfilled"] is False and g["backfilled_count"] == 0 for g in gaps)
    assert all("HTTP 403" in g["reason"] for g in gaps), gaps
    assert sum(c.backfilled for c in service.state.symbols.values()) == 0


def test_a_restart_resumes_without_duplicates_and_fills_the_downtime(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """An ingest restarted after a pause resumes from the last ids in Kafka (nothing twice)
    and reports the downtime as an interval gap per symbol, filled from recent-trade."""
    private = lane(settings, "bybitrestart", bybit={"symbols": SYMBOLS})
    config = sim_config(tmp_path, rate=10)  # 60 trades of a symbol span 12 s: the downtime

    async def scenario() -> None:
        async with Simulator(config) as sim:
            await ingest_until(private, "bybit", sim, lambda s: delivered(s) >= 20)
            await asyncio.sleep(1.0)  # the exchange trades on while the ingest is down
            await ingest_until(
                private,
                "bybit",
                sim,
                lambda s: sum(c.gaps for c in s.state.symbols.values()) >= 2 and delivered(s) >= 10,
            )

    asyncio.run(scenario())
    landed = read_topic(private, raw_topic("bybit", private.kafka.topic_prefix))
    ids = [r.value["message_id"] for r in landed]
    assert len(ids) == len(set(ids)), "nothing twice across the restart"
    gaps = _gaps(private)
    assert {g["exchange_symbol"] for g in gaps} == set(SYMBOLS)
    assert all(g["backfilled"] for g in gaps), gaps
    for records in by_symbol(landed).values():
        live = [int(r.value["trade_id"]) for r in records]
        assert sorted(set(live)) == sorted(live)


def test_recent_trade_s_60_rows_say_what_they_could_not_reach(tmp_path: Path) -> None:
    """An interval older than recent-trade's newest 60 trades gets what they hold of it and a
    reason naming the limit; one within them is complete."""
    config = sim_config(tmp_path, ledger_path=None, rate=400, trades_per_symbol=200)

    async def scenario() -> None:
        async with Simulator(config) as sim:
            history = sim.market("bybit").histories["BTCUSDT"].trades
            await wait_until_async(
                lambda: Pending(len(history)) if len(history) < 200 else True,
                30,
                "every trade made (the history then holds still)",
            )
            adapter = BybitAdapter(BybitSettings())
            spec = FeedSpec(SYMBOLS, rest_url=sim.urls.bybit_rest)

            def interval(first: SimTrade, last: SimTrade) -> Interval:
                return Interval("BTCUSDT", first.time_us, shared_id(first, 0),
                                last.time_us, shared_id(last, 0))  # fmt: skip

            old = await adapter.backfill_interval(spec, interval(history[-150], history[-1]))
            assert not old.complete and "newest 60 spot trades" in str(old.reason)
            assert len(old.trades) == 59
            recent = await adapter.backfill_interval(spec, interval(history[-40], history[-1]))
            assert recent.complete and recent.reason is None
            assert [t.trade_key for t in recent.trades] == [
                shared_id(t, 0) for t in history[-39:-1]
            ]

    asyncio.run(scenario())


def test_trades_of_garbled_frames_are_recovered_from_recent_trade(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """A garbled push goes to the DLQ and, ids revealing nothing, breaks the feed of the
    symbols it names: their next trade closes the interval and recent-trade fills it, so every
    trade the exchange made between a symbol's first and last one in Kafka is there, once."""
    private = lane(settings, "bybitgarbled", bybit={"symbols": SYMBOLS})
    garble = FaultRule(protocol="bybit", garble_every=9, duplicate_every=13)
    config = sim_config(tmp_path, rate=60, faults=(garble,))

    async def scenario() -> dict[str, set[str]]:
        async with Simulator(config) as sim:
            service = await ingest_until(private, "bybit", sim, lambda s: delivered(s) > 200)
            assert service.state.dead_lettered > 0
            market = sim.market("bybit")
            return {
                symbol: {str(shared_id(t, place)) for t in market.histories[symbol].trades}
                for place, symbol in enumerate(market.instruments)
            }

    made = asyncio.run(scenario())
    landed = read_topic(private, raw_topic("bybit", private.kafka.topic_prefix))
    ids = [r.value["message_id"] for r in landed]
    assert len(ids) == len(set(ids)), "nothing twice"
    garbled = [e for e in read_ledger(tmp_path / "ledger.jsonl") if e.garbled]
    assert garbled
    for symbol, records in by_symbol(landed).items():
        present = {r.value["trade_id"] for r in records}
        low, high = min(map(int, present)), max(map(int, present))
        assert {i for i in made[symbol] if low <= int(i) <= high} == present, symbol
    gaps = _gaps(private)
    assert gaps and all(g["backfilled"] for g in gaps)
