"""The simulated Bybit v5 spot exchange over real sockets, and the Bybit feed client against it:
the protocol's rules as Bybit states them, every trade once and in order, disconnects, stalls
and garbled or duplicated frames survived, refusals one clear line."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from k2.errors import SubscriptionRejectedError, UnknownSymbolError
from k2.exchanges.base import ControlKind, Gap, Malformed
from k2.exchanges.booksync import Outcome, Reason, Verdict
from k2.exchanges.bybit import wire
from k2.exchanges.bybit.book import BybitBooks, read_message
from k2.exchanges.bybit.client import BybitFeedClient, BybitFeedOptions
from k2.exchanges.parse import load_json
from k2.simulator.faults import FaultRule
from k2.simulator.ledger import read_book_ledger, read_ledger
from k2.simulator.server import Simulator
from tests.simulated import simulator_configs

from .test_feeds_vs_simulator import Feed, ledger_by_symbol, run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SYMBOLS = ("BTCUSDT", "ETHUSDT")


sim_config = simulator_configs(
    rate=200,
    skew=0.0,
    kraken_symbols=("XBT/USD",),
    binance_symbols=("BTCUSDT",),
    bybit_symbols=SYMBOLS,
)


def client_of(
    sim: Simulator, symbols: tuple[str, ...] = SYMBOLS, **changes: Any
) -> BybitFeedClient:
    options = BybitFeedOptions(
        symbols, ws_url=sim.urls.bybit_spot, rest_url=sim.urls.bybit_rest, **changes
    )
    return BybitFeedClient(options)


async def _answer(ws: aiohttp.ClientWebSocketResponse, request: dict[str, Any]) -> dict[str, Any]:
    """Send ``request``; the next frame that is not a trade push."""
    await ws.send_str(json.dumps(request))
    while True:
        answer: dict[str, Any] = json.loads(await ws.receive_str(timeout=5))
        if "topic" not in answer:
            return answer


def test_the_exchange_answers_pings_acks_and_refusals_as_bybit_does(tmp_path: Path) -> None:
    """Ping gets the spot pong; a known topic the spot ack with req_id; an unknown symbol and
    more than ten args are refused whole; a second subscription to a topic is refused."""

    async def scenario() -> None:
        async with (
            Simulator(sim_config(tmp_path, ledger_path=None)) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(sim.urls.bybit_spot) as ws,
        ):
            pong = await _answer(ws, {"req_id": "1", "op": "ping"})
            assert (pong["success"], pong["ret_msg"], pong["op"]) == (True, "pong", "ping")
            topic = wire.topic("BTCUSDT")
            ack = await _answer(ws, {"req_id": "2", "op": "subscribe", "args": [topic]})
            assert ack == {**ack, "success": True, "ret_msg": "subscribe", "req_id": "2"}
            unknown = ["publicTrade.NOPEUSDT", wire.topic("ETHUSDT")]
            refused = await _answer(ws, {"req_id": "3", "op": "subscribe", "args": unknown})
            assert refused["success"] is False
            assert refused["ret_msg"] == "Invalid symbol :[publicTrade.NOPEUSDT]"
            many = [wire.topic("ETHUSDT")] * 11
            too_many = await _answer(ws, {"op": "subscribe", "args": many})
            assert (too_many["success"], too_many["ret_msg"]) == (False, "args size >10")
            again = await _answer(ws, {"op": "subscribe", "args": [topic]})
            assert again["ret_msg"] == f"error:already subscribed,topic:{topic}"
            assert [s.describe()["subscriptions"] for s in sim.sessions("bybit")] == [[topic]]

    run(scenario)


def test_trades_are_pushed_without_a_snapshot_ids_shared_across_symbols(tmp_path: Path) -> None:
    """A subscription gets only trades made after it, as v5 pushes; no two symbols share an
    id, and a symbol's ids rise but skip."""

    async def scenario() -> None:
        async with (
            Simulator(sim_config(tmp_path, ledger_path=None, rate=400)) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(sim.urls.bybit_spot) as ws,
        ):
            await asyncio.sleep(0.5)  # trades before the subscription: never sent
            made = {s: h.trade_end for s, h in sim.market("bybit").histories.items()}
            args = [wire.topic(s) for s in SYMBOLS]
            await _answer(ws, {"op": "subscribe", "args": args})
            ids: dict[str, list[int]] = {s: [] for s in SYMBOLS}
            while min(map(len, ids.values())) < 20:
                push = json.loads(await ws.receive_str(timeout=5))
                for item in push["data"]:
                    ids[item["s"]].append(int(item["i"]))
            history = sim.market("bybit").histories
        for symbol, seen in ids.items():
            assert seen == sorted(set(seen)) and seen[1] - seen[0] >= 1000
            first = history[symbol].trades[made[symbol] - history[symbol].trade_base]
            assert seen[0] >= first.trade_id * 1000  # nothing older than the subscription
        assert not set(ids["BTCUSDT"]) & set(ids["ETHUSDT"])

    run(scenario)


def test_a_connection_with_neither_ping_nor_data_is_cut(tmp_path: Path) -> None:
    """Bybit cuts a connection after its idle time without a ping or data; pings keep it."""

    async def scenario() -> None:
        config = sim_config(tmp_path, ledger_path=None, bybit_idle_s=1.0)
        async with Simulator(config) as sim, aiohttp.ClientSession() as http:
            async with http.ws_connect(sim.urls.bybit_spot) as quiet:
                message = await quiet.receive(timeout=5)
                assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            async with http.ws_connect(sim.urls.bybit_spot) as pinging:
                for n in range(6):
                    assert (await _answer(pinging, {"op": "ping", "req_id": str(n)}))["success"]
                    await asyncio.sleep(0.4)
                assert not pinging.closed

    run(scenario)


def test_recent_trade_is_the_newest_60_newest_first_lost_ones_included(tmp_path: Path) -> None:
    """REST recent-trade answers at most 60 of a symbol's newest trades, newest first, with
    the ids the stream uses, and the trades the stream lost among them; instruments-info
    lists every symbol as Trading."""

    async def scenario() -> None:
        config = sim_config(tmp_path, ledger_path=None, rate=600, lose_every=5)
        async with Simulator(config) as sim, aiohttp.ClientSession() as http:
            await asyncio.sleep(0.5)
            base = sim.urls.bybit_rest + wire.RECENT_TRADES_PATH + "?category=spot&symbol=BTCUSDT"
            async with http.get(base) as answer:
                rows = (await answer.json())["result"]["list"]
            async with http.get(base + "&limit=61") as answer:
                assert (await answer.json())["retCode"] == 10001
            async with http.get(
                sim.urls.bybit_rest + wire.INSTRUMENTS_PATH + "?category=spot"
            ) as a:
                listed = (await a.json())["result"]["list"]
            history = sim.market("bybit").histories["BTCUSDT"]
        assert len(rows) == 60
        ids = [int(row["execId"]) for row in rows]
        assert ids == sorted(ids, reverse=True)
        lost = {t.trade_id * 1000 for t in history.trades if t.lost}
        assert lost & set(ids)
        assert {e["symbol"]: e["status"] for e in listed} == dict.fromkeys(SYMBOLS, "Trading")

    run(scenario)


def test_every_emitted_trade_arrives_once_in_per_symbol_order(tmp_path: Path) -> None:
    """The feed client gets each ledger trade once, in order, with the fields as sent, and
    reports no gap: ids shared by every symbol reveal none."""
    per_symbol = 200

    async def scenario() -> None:
        config = sim_config(tmp_path, rate=400, trades_per_symbol=per_symbol)
        async with Simulator(config) as sim, Feed(client_of(sim)) as feed:

            def all_received(f: Feed) -> bool:
                sent = ledger_by_symbol(sim.ledger_path)
                done = all(
                    h.trade_end >= per_symbol for h in sim.market("bybit").histories.values()
                )
                return done and sum(map(len, sent.values())) == sum(map(len, f.trades().values()))

            await feed.until(all_received)
            await asyncio.sleep(0.3)
            sent = ledger_by_symbol(sim.ledger_path)
        received = feed.trades()
        assert set(received) == set(SYMBOLS) == set(sent)
        for symbol, trades in received.items():
            assert [dict(t.fields) for t in trades] == [dict(e.fields) for e in sent[symbol]]
            assert [t.trade_key for t in trades] == [e.trade_id for e in sent[symbol]]
        assert feed.gaps() == []
        assert feed.controls(ControlKind.DISCONNECTED) == []

    run(scenario)


def test_disconnects_duplicates_and_garbled_frames_are_survived(tmp_path: Path) -> None:
    """Dropped connections are replaced, duplicated frames dropped as replays, garbled frames
    dead-lettered; every readable trade arrives once and no id jump is called a gap."""
    drop = FaultRule(protocol="bybit", drop_after_trades=80, connections=2)
    noise = FaultRule(protocol="bybit", duplicate_every=7, garble_every=11)

    async def scenario() -> None:
        config = sim_config(tmp_path, rate=400, faults=(drop, noise))
        async with Simulator(config) as sim:
            async with Feed(client_of(sim, backoff_base_s=0.2)) as feed:
                await feed.until(
                    lambda f: len(f.controls(ControlKind.CONNECTED)) >= 3
                    and sum(map(len, f.trades().values())) > 300
                )
            sent = ledger_by_symbol(sim.ledger_path)
            entries = read_ledger(sim.ledger_path)  # type: ignore[arg-type]
        assert not [e for _, e in feed.events if isinstance(e, Gap)]
        assert any(isinstance(e, Malformed) for _, e in feed.events)
        assert feed.client.stats.duplicates_dropped > 0
        assert any(e.duplicate for e in entries) and any(e.garbled for e in entries)
        sent_ids = {(s, e.trade_id) for s, es in sent.items() for e in es}
        for symbol, trades in feed.trades().items():
            keys = [t.trade_key for t in trades]
            assert keys == sorted(set(keys)), "each id once, in order"
            assert all((symbol, key) in sent_ids for key in keys)

    run(scenario)


def test_a_silent_stall_is_replaced_within_the_liveness_deadline(tmp_path: Path) -> None:
    """A connection that stops sending everything (pongs too) is replaced after the liveness
    deadline, and trades flow again."""
    stall = FaultRule(protocol="bybit", stall="silent", stall_after_trades=40, connections=1)

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path, faults=(stall,))) as sim:
            client = client_of(sim, liveness_timeout_s=1.5, ping_interval_s=0.5)
            async with Feed(client) as feed:
                await feed.until(lambda f: len(f.controls(ControlKind.CONNECTED)) >= 2)
                (_, lost), *_ = feed.controls(ControlKind.DISCONNECTED)
                assert "within 1.5 s" in str(lost.detail["reason"])
                count = sum(map(len, feed.trades().values()))
                await feed.until(lambda f: sum(map(len, f.trades().values())) > count + 20)

    run(scenario)


def test_a_refused_symbol_fails_with_one_line_naming_it(tmp_path: Path) -> None:
    """A symbol the exchange refuses on subscribing stops the feed with one line naming it and
    Bybit's own message."""
    reject = FaultRule(protocol="bybit", reject_symbols=("ETHUSDT",))

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path, faults=(reject,))) as sim:
            with pytest.raises(SubscriptionRejectedError) as caught:
                async for _ in client_of(sim).events():
                    pass
        message = str(caught.value)
        assert "\n" not in message and "ETHUSDT" in message
        assert "Invalid symbol :[publicTrade.ETHUSDT]" in message

    run(scenario)


def test_an_unknown_symbol_is_refused_before_connecting(tmp_path: Path) -> None:
    """A symbol instruments-info does not list is refused with one line before any
    connection is opened."""

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path)) as sim:
            with pytest.raises(UnknownSymbolError) as caught:
                async for _ in client_of(sim, ("BTCUSDT", "NOPEUSDT")).events():
                    pass
            assert sim.sessions() == []
        assert "\n" not in str(caught.value) and "'NOPEUSDT'" in str(caught.value)

    run(scenario)


def test_every_symbol_is_subscribed_within_bybit_s_limits(tmp_path: Path) -> None:
    """``*`` subscribes every listed symbol, over connections whose args stay within 21,000
    characters, ten topics a request (more would be refused), and each symbol's trades come."""

    async def scenario() -> None:
        config = sim_config(tmp_path, ledger_path=None, bybit_symbols=None, rate=2000)
        async with Simulator(config) as sim:
            client = client_of(sim, ("*",))
            async with Feed(client) as feed:
                await feed.until(lambda f: len(f.controls(ControlKind.CONNECTED)) == 2, 60)
                listed = set(sim.market("bybit").instruments)
                await feed.until(lambda f: len(f.trades()) >= len(listed) // 2, 60)
                sessions = sim.sessions("bybit")
        assert set(client.natives) == listed and len(listed) == 650
        assert len(sessions) == 2 == -(-650 // BybitFeedClient.max_symbols_per_connection)
        for session in sessions:
            args = json.dumps(session.describe()["subscriptions"])
            assert len(args) <= wire.MAX_ARGS_CHARS
        assert set(feed.trades()) <= listed

    run(scenario)


def test_orderbook_topics_verify_by_update_id(tmp_path: Path) -> None:
    """A client subscribed to ``orderbook.50`` and ``orderbook.1`` topics of two symbols
    verifies a few hundred messages with K2's Bybit verifier (a snapshot, then each ``u`` one
    above the one before), and sees a jumped ``u`` as a gap."""
    wanted = 300
    topics = [wire.book_topic(50, "BTCUSDT"), wire.book_topic(1, "ETHUSDT")]

    async def scenario() -> None:
        async with (
            Simulator(sim_config(tmp_path, rate=600)) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(sim.urls.bybit_spot) as ws,
        ):
            ack = await _answer(ws, {"op": "subscribe", "args": topics})
            assert ack["success"] is True
            books, outcomes = BybitBooks(), Counter[Outcome]()
            while outcomes[Outcome.VERIFIED] < wanted:
                message = load_json(await ws.receive_str(timeout=5))
                outcomes[books.apply(read_message(message))[1].outcome] += 1
            assert set(outcomes) == {Outcome.VERIFIED}
            sim.add_fault(FaultRule(protocol="bybit", book_jump_every=3))
            broken = Verdict(Outcome.VERIFIED)
            while broken.verified:  # messages already on their way come first
                message = load_json(await ws.receive_str(timeout=5))
                broken = books.apply(read_message(message))[1]
            assert broken.reason is Reason.SEQUENCE_GAP
        assert sim.ledger_path is not None
        entries = read_book_ledger(sim.ledger_path)
        assert {entry.symbol for entry in entries} == {"BTCUSDT", "ETHUSDT"}
        assert any(entry.fault == "sequence_jump" for entry in entries)

    run(scenario)
