"""Coinbase Advanced Trade as a client written from Coinbase's documentation (and ccxt, pointed
at the simulator by URL only) sees the simulator."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.pro
import websockets

from k2.exchanges.booksync import Outcome, Reason, Verdict
from k2.exchanges.coinbase.book import CoinbaseBooks, read_l2, read_sequence
from k2.exchanges.parse import load_json
from k2.simulator import FaultRule, Simulator, read_ledger
from k2.simulator.ledger import LedgerEntry
from tests.simulated import collect, run_scenario, simulator_configs

TRADES = {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "market_trades"}
HEARTBEATS = {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "heartbeats"}


config = simulator_configs(rate=300, heartbeat_s=0.2, coinbase_symbols=("BTC-USD", "ETH-USD"))


def trades_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every trade of ``market_trades`` messages, in the order sent."""
    return [
        trade
        for m in messages
        if m.get("channel") == "market_trades"
        for event in m["events"]
        for trade in event["trades"]
    ]


def coinbase_ledger(sim: Simulator) -> list[LedgerEntry]:
    assert sim.ledger_path is not None
    return [e for e in read_ledger(sim.ledger_path) if e.exchange == "coinbase"]


def test_a_connection_without_a_subscribe_is_closed_at_the_deadline(tmp_path: Path) -> None:
    """Coinbase disconnects a client that sends no subscribe within 5 s (shortened here)."""

    async def main() -> tuple[float, list[Any]]:
        async with Simulator(config(tmp_path, coinbase_subscribe_timeout_s=1.0)) as sim:
            started = time.monotonic()
            async with websockets.connect(sim.urls.coinbase_ws) as ws:
                messages = await collect(ws, 5.0)
            return time.monotonic() - started, messages

    elapsed, messages = run_scenario(main, timeout=30)
    assert messages == [] and 0.9 <= elapsed < 3.0


def test_one_message_names_one_channel_and_sequence_num_counts_every_message(
    tmp_path: Path,
) -> None:
    """A subscribe naming two channels is refused; the connection's messages are numbered from 0
    without a hole across subscriptions, heartbeats and trades."""

    async def main() -> list[dict[str, Any]]:
        async with (
            Simulator(config(tmp_path)) as sim,
            websockets.connect(sim.urls.coinbase_ws) as ws,
        ):
            both = {**TRADES, "channels": ["market_trades", "heartbeats"]}
            del both["channel"]
            await ws.send(json.dumps(both))
            await ws.send(json.dumps(TRADES))
            await ws.send(json.dumps(HEARTBEATS))
            return await collect(ws, 1.5)

    messages = run_scenario(main, timeout=30)
    assert messages[0]["type"] == "error" and "sequence_num" not in messages[0]
    numbered = messages[1:]
    assert [m["sequence_num"] for m in numbered] == list(range(len(numbered)))
    channels = [m["channel"] for m in numbered]
    answers = [m for m in numbered if m["channel"] == "subscriptions"]
    # a trade may come between the two answers: market_trades is live from its own answer on
    assert channels[0] == "subscriptions" and len(answers) == 2
    assert answers[1]["events"][0]["subscriptions"] == {
        "market_trades": ["BTC-USD"],
        "heartbeats": ["BTC-USD"],
    }
    assert channels.count("heartbeats") >= 5 and "market_trades" in channels
    counters = [
        int(m["events"][0]["heartbeat_counter"]) for m in numbered if "heart" in m["channel"]
    ]
    assert counters == list(range(1, len(counters) + 1))


def test_a_snapshot_then_updates_newest_first_each_trade_in_the_ledger(tmp_path: Path) -> None:
    """Subscribing sends the recent trades as a snapshot, then updates; within a message the
    newest trade comes first; every trade sent is in the ledger with its fields as sent."""

    async def main() -> tuple[list[dict[str, Any]], list[LedgerEntry]]:
        async with Simulator(config(tmp_path, snapshot_size=20)) as sim:
            await asyncio.sleep(0.5)  # some history to snapshot
            async with websockets.connect(sim.urls.coinbase_ws) as ws:
                await ws.send(json.dumps(TRADES))
                messages = await collect(ws, 1.5)
            return messages, coinbase_ledger(sim)

    messages, ledger = run_scenario(main, timeout=30)
    trade_messages = [m for m in messages if m["channel"] == "market_trades"]
    assert trade_messages[0]["events"][0]["type"] == "snapshot"
    assert len(trade_messages[0]["events"][0]["trades"]) == 20
    assert {m["events"][0]["type"] for m in trade_messages[1:]} == {"update"}
    for message in trade_messages:
        ids = [int(t["trade_id"]) for t in message["events"][0]["trades"]]
        assert ids == sorted(ids, reverse=True)
    sent = sorted(trades_of(messages), key=lambda t: int(t["trade_id"]))
    first = int(sent[0]["trade_id"])
    assert [int(t["trade_id"]) for t in sent] == list(range(first, first + len(sent)))
    assert [dict(e.fields) for e in ledger[: len(sent)]] == sent  # more went out after reading
    assert all(t["side"] in ("BUY", "SELL") and t["product_id"] == "BTC-USD" for t in sent)


def test_a_quiet_channel_closes_without_heartbeats_and_stays_open_with_them(
    tmp_path: Path,
) -> None:
    """Without heartbeats a channel that sent nothing for its idle time goes quiet; a connection
    that subscribed heartbeats keeps it."""

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        quiet = config(tmp_path, rate=0, coinbase_channel_idle_s=0.6)
        async with (
            Simulator(quiet) as sim,
            websockets.connect(sim.urls.coinbase_ws) as bare,
            websockets.connect(sim.urls.coinbase_ws) as kept,
        ):
            await bare.send(json.dumps(TRADES))
            await kept.send(json.dumps(TRADES))
            await kept.send(json.dumps(HEARTBEATS))
            await asyncio.gather(collect(bare, 1.5), collect(kept, 1.5))
            first, second = sim.sessions("coinbase")
            return first.describe(), second.describe()

    bare, kept = run_scenario(main, timeout=30)
    assert "market_trades" not in bare["subscriptions"]
    assert kept["subscriptions"]["market_trades"] == ["BTC-USD"]


def test_usdc_is_served_as_usd_and_unknown_products_are_refused(tmp_path: Path) -> None:
    """BTC-USDC gets BTC-USD's trades under BTC-USD's name; an unknown product is an error and
    nothing of that request is subscribed."""

    async def main() -> list[dict[str, Any]]:
        async with (
            Simulator(config(tmp_path)) as sim,
            websockets.connect(sim.urls.coinbase_ws) as ws,
        ):
            bad = {**TRADES, "product_ids": ["ETH-USD", "NOSUCH-USD"]}
            await ws.send(json.dumps(bad))
            await ws.send(json.dumps({**TRADES, "product_ids": ["BTC-USDC"]}))
            return await collect(ws, 1.0)

    messages = run_scenario(main, timeout=30)
    assert messages[0] == {
        "type": "error",
        "message": "Failed to subscribe",
        "reason": "NOSUCH-USD is not a valid product",
    }
    assert messages[1]["events"][0]["subscriptions"] == {"market_trades": ["BTC-USDC"]}
    trades = trades_of(messages)
    assert trades and {t["product_id"] for t in trades} == {"BTC-USD"}


def test_more_than_the_message_rate_is_refused(tmp_path: Path) -> None:
    """An IP address may send 8 messages a second (3 here); the extra ones get an error."""

    async def main() -> list[dict[str, Any]]:
        async with (
            Simulator(config(tmp_path, coinbase_message_rate=3)) as sim,
            websockets.connect(sim.urls.coinbase_ws) as ws,
        ):
            for _ in range(4):
                await ws.send(json.dumps(HEARTBEATS))
            return await collect(ws, 0.5)

    messages = run_scenario(main, timeout=30)
    assert [m.get("channel") for m in messages].count("subscriptions") == 3
    assert {"type": "error", "message": "rate limit exceeded"} in messages


def test_the_history_pages_by_trade_id_newest_first_with_the_makers_side(tmp_path: Path) -> None:
    """``after`` reads older trades, ``before`` newer ones, ``CB-AFTER`` continues; each row's
    side is the maker's in lower case, as the socket sends it in upper case."""

    async def main() -> tuple[list[list[Any]], list[Any], list[LedgerEntry]]:
        async with (
            Simulator(config(tmp_path, rate=2000, snapshot_size=50)) as sim,
            websockets.connect(sim.urls.coinbase_ws) as ws,
        ):
            await asyncio.sleep(0.3)
            await ws.send(json.dumps(TRADES))
            await collect(ws, 0.3)
            url = sim.urls.coinbase_rest + "/products/BTC-USD/trades"
            pages = []
            async with aiohttp.ClientSession() as http:
                async with http.get(url + "?limit=5") as response:
                    pages.append(await response.json())
                    cursor = response.headers["CB-AFTER"]
                async with http.get(f"{url}?limit=5&after={cursor}") as response:
                    pages.append(await response.json())
                async with http.get(f"{url}?limit=3&before={int(cursor) - 6}") as response:
                    newer = await response.json()
                async with http.get(sim.urls.coinbase_rest + "/products/NO-USD/trades") as missing:
                    assert missing.status == 404
            return pages, newer, coinbase_ledger(sim)

    pages, newer, ledger = run_scenario(main, timeout=30)
    ids = [row["trade_id"] for page in pages for row in page]
    assert ids == list(range(ids[0], ids[0] - 10, -1))
    assert [row["trade_id"] for row in newer] == [ids[-1] + 2, ids[-1] + 1, ids[-1]]
    sent = {int(str(e.fields["trade_id"])): e.fields for e in ledger}
    for row in (r for page in pages for r in page if r["trade_id"] in sent):
        socket = sent[row["trade_id"]]
        assert row["side"] == str(socket["side"]).lower()
        assert (row["price"], row["size"], row["time"]) == (socket["price"], socket["size"],
                                                            socket["time"])  # fmt: skip


def test_ccxt_watch_trades_pointed_at_the_simulator_receives_its_trades(tmp_path: Path) -> None:
    """ccxt's coinbase client, given only the simulator's URLs, loads the markets and receives
    every trade the simulator sent it, with its side (the maker's: ccxt passes market_trades'
    side on as sent), price, amount and time."""

    async def main() -> tuple[list[dict[str, Any]], list[LedgerEntry]]:
        async with Simulator(config(tmp_path, rate=100, trades_per_symbol=40)) as sim:
            exchange = ccxt.pro.coinbase()
            exchange.urls["api"]["rest"] = sim.urls.coinbase_rest
            exchange.urls["api"]["ws"] = sim.urls.coinbase_ws
            received: dict[str, dict[str, Any]] = {}
            try:
                while len(received) < 20:
                    for trade in await exchange.watch_trades("BTC/USD"):
                        received[trade["id"]] = trade
            finally:
                await exchange.close()
            return list(received.values()), coinbase_ledger(sim)

    trades, ledger = run_scenario(main, timeout=60)
    sent = {str(e.fields["trade_id"]): e.fields for e in ledger}
    assert len(trades) >= 20 and {t["id"] for t in trades} <= set(sent)
    for trade in trades:
        fields = sent[trade["id"]]
        assert trade["symbol"] == "BTC/USD"
        assert trade["side"] == str(fields["side"]).lower()
        assert trade["price"] == float(str(fields["price"]))
        assert trade["amount"] == float(str(fields["size"]))
        assert trade["datetime"][:23] == str(fields["time"])[:23]


def test_level2_books_verify_by_the_connection_sequence(tmp_path: Path) -> None:
    """A client subscribed to ``level2`` of two products, ``market_trades`` and ``heartbeats``
    verifies a few hundred book events with K2's Coinbase verifier (one ``sequence_num`` counter
    for every channel of the connection), and sees a dropped book message as a gap that
    unverifies every book."""
    wanted = 300
    products = ["BTC-USD", "ETH-USD"]

    async def main() -> tuple[Counter[Outcome], list[Verdict]]:
        settings = config(tmp_path, rate=600, heartbeat_s=0.2)
        async with Simulator(settings) as sim, websockets.connect(sim.urls.coinbase_ws) as ws:
            for channel in ("level2", "market_trades", "heartbeats"):
                request = {"type": "subscribe", "channel": channel, "product_ids": products}
                await ws.send(json.dumps(request))
            books, outcomes = CoinbaseBooks(), Counter[Outcome]()
            while outcomes[Outcome.VERIFIED] < wanted:
                message = load_json(await asyncio.wait_for(ws.recv(), 5))
                outcomes.update(verdict.outcome for verdict in _observe(books, message))
            sim.add_fault(FaultRule(protocol="coinbase", book_drop_every=1))
            broken: list[Verdict] = []
            while not any(verdict.reason is Reason.SEQUENCE_GAP for verdict in broken):
                message = load_json(await asyncio.wait_for(ws.recv(), 5))
                broken = _observe(books, message)
        return outcomes, broken

    outcomes, broken = run_scenario(main, timeout=30)
    assert set(outcomes) == {Outcome.VERIFIED}
    gaps = [verdict for verdict in broken if verdict.reason is Reason.SEQUENCE_GAP]
    assert len(gaps) == 2  # both products' books, whichever message was lost


def _observe(books: CoinbaseBooks, message: Any) -> list[Verdict]:
    """The verdicts a message of any channel gives (only ``l2_data`` applies levels)."""
    if isinstance(message, dict) and message.get("channel") == "l2_data":
        return [verdict for _, verdict in books.apply(read_l2(message))]
    sequence = read_sequence(message)
    return [] if sequence is None else [verdict for _, verdict in books.observe(sequence)]
