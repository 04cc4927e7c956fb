"""OKX v5 as a client written from OKX's documentation sees the simulator: events per argument,
60018 for what an endpoint does not have, text ping, the 30 s idle cut, the hourly request
limit, one trade a trades-all push, and REST history that pages by trade id."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import websockets

from k2.exchanges.booksync import Outcome, Reason, Verdict
from k2.exchanges.okx import wire
from k2.exchanges.okx.book import OkxBookMessage, OkxBooks, read_push, read_rest_snapshot
from k2.exchanges.parse import load_json
from k2.simulator import FaultRule, Simulator, read_ledger
from tests.simulated import closed_within, run_scenario, simulator_configs

SUBSCRIBE = '{"id":"7","op":"subscribe","args":[{"channel":"%s","instId":"%s"}]}'


config = simulator_configs(rate=300, okx_symbols=("BTC-USDT", "ETH-USDT"))


async def frames_for(ws: Any, seconds: float) -> list[Any]:
    """Every frame within ``seconds`` (JSON decoded, ``pong`` as text)."""
    frames: list[Any] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            text = await asyncio.wait_for(ws.recv(), left)
        except (TimeoutError, websockets.ConnectionClosed):
            break
        frames.append(text if text == wire.PONG else json.loads(text))
    return frames


def test_each_argument_is_acknowledged_then_one_trade_a_push(tmp_path: Path) -> None:
    """A subscribe gets its event (id echoed, connId), then trades-all pushes one trade each,
    every one in the ledger exactly as sent, ids one after another."""

    async def main() -> list[Any]:
        async with (
            Simulator(config(tmp_path)) as sim,
            websockets.connect(sim.urls.okx_business) as ws,
        ):
            await ws.send(SUBSCRIBE % ("trades-all", "BTC-USDT"))
            return await frames_for(ws, 1.5)

    first, *pushes = run_scenario(main, timeout=30)
    assert first["event"] == "subscribe" and first["id"] == "7"
    assert first["arg"] == {"channel": "trades-all", "instId": "BTC-USDT"}
    assert len(first["connId"]) == 8
    assert pushes and all(len(p["data"]) == 1 for p in pushes)
    rows = [p["data"][0] for p in pushes]
    assert all(list(row) == list(wire.ALL_TRADES_FIELDS) for row in rows)
    assert all(int(b["tradeId"]) == int(a["tradeId"]) + 1 for a, b in pairwise(rows))
    ledger = [e.fields for e in read_ledger(tmp_path / "ledger.jsonl")]
    assert ledger[: len(rows)] == rows


def test_unknown_instruments_and_wrong_channels_get_60018(tmp_path: Path) -> None:
    """An instId the exchange lacks, or a channel another endpoint serves, is event error 60018;
    a request that is no request is 60012; ``ping`` is answered ``pong``."""

    async def main() -> list[Any]:
        async with (
            Simulator(config(tmp_path)) as sim,
            websockets.connect(sim.urls.okx_business) as ws,
        ):
            await ws.send(SUBSCRIBE % ("trades-all", "NOPE-USDT"))
            await ws.send(SUBSCRIBE % ("trades", "BTC-USDT"))
            await ws.send('{"op":"subscribe","argss":[]}')
            await ws.send("ping")
            return await frames_for(ws, 0.5)

    unknown, wrong, invalid, pong = run_scenario(main, timeout=30)
    assert (unknown["event"], unknown["code"], unknown["id"]) == ("error", "60018", "7")
    assert "instId:NOPE-USDT doesn't exist" in unknown["msg"]
    assert wrong["code"] == "60018" and "channel:trades," in wrong["msg"]
    assert invalid["code"] == "60012" and pong == "pong"


def test_a_rejected_instrument_is_refused_like_an_unknown_one(tmp_path: Path) -> None:
    """A rejected OKX instrument gets OKX's error for an instrument it does not list."""
    reject = FaultRule(protocol="okx", reject_symbols=("ETH-USDT",))

    async def main() -> list[Any]:
        async with (
            Simulator(config(tmp_path, faults=(reject,))) as sim,
            websockets.connect(sim.urls.okx_business) as ws,
        ):
            await ws.send(SUBSCRIBE % ("trades-all", "ETH-USDT"))
            return await frames_for(ws, 0.3)

    (error,) = run_scenario(main, timeout=30)
    assert error["code"] == "60018"


def test_a_connection_without_a_subscription_or_data_is_cut(tmp_path: Path) -> None:
    """No subscription within the idle time: cut. Subscribed but nothing pushed (a quiet
    instrument): cut, unless the client pings and gets its pong."""

    async def main() -> tuple[bool, bool, bool]:
        quiet = config(tmp_path, rate=0, okx_idle_s=1.0)
        async with Simulator(quiet) as sim:
            url = sim.urls.okx_business
            async with websockets.connect(url) as ws:
                idle = await closed_within(ws, 2.5)
            async with websockets.connect(url) as ws:
                await ws.send(SUBSCRIBE % ("trades-all", "BTC-USDT"))
                no_data = await closed_within(ws, 2.5)
            async with websockets.connect(url) as ws:
                await ws.send(SUBSCRIBE % ("trades-all", "BTC-USDT"))
                for _ in range(5):
                    await asyncio.sleep(0.5)
                    await ws.send("ping")
                pinged = not await closed_within(ws, 0.3)
            return idle, no_data, pinged

    assert run_scenario(main, timeout=30) == (True, True, True)


def test_requests_beyond_the_hourly_limit_get_60014(tmp_path: Path) -> None:
    """Subscribe requests beyond a connection's hourly limit get OKX's 60014 error."""

    async def main() -> list[Any]:
        async with (
            Simulator(config(tmp_path, okx_requests_per_hour=2)) as sim,
            websockets.connect(sim.urls.okx_business) as ws,
        ):
            for inst_id in ("BTC-USDT", "ETH-USDT", "BTC-USDT"):
                await ws.send(SUBSCRIBE % ("trades-all", inst_id))
            frames = await frames_for(ws, 0.5)
        return [f for f in frames if "event" in f]

    events = run_scenario(main, timeout=30)
    assert [e["event"] for e in events] == ["subscribe", "subscribe", "error"]
    assert events[-1]["code"] == "60014"


def test_the_trades_channel_aggregates_each_taker_order(tmp_path: Path) -> None:
    """``trades`` on the public endpoint: one row per taker order, ``tradeId`` its last fill
    and ``count`` its fills, so consecutive rows cover every id once."""

    async def main() -> list[Any]:
        async with (
            Simulator(config(tmp_path)) as sim,
            websockets.connect(sim.urls.okx_public) as ws,
        ):
            await ws.send(SUBSCRIBE % ("trades", "BTC-USDT"))
            return await frames_for(ws, 2.0)

    ack, *pushes = run_scenario(main, timeout=30)
    assert ack["event"] == "subscribe"
    rows = [p["data"][0] for p in pushes]
    assert rows and any(row["count"] != "1" for row in rows)
    for before, after in pairwise(rows):
        assert int(after["tradeId"]) - int(after["count"]) == int(before["tradeId"])
    assert all(isinstance(row["seqId"], int) for row in rows)


def test_rest_history_pages_by_trade_id_and_holds_lost_trades(tmp_path: Path) -> None:
    """history-trades ``after`` gives older trades newest first, ``before`` newer ones; the ids
    the stream lost are there, with the fields the stream would have sent."""

    async def main() -> tuple[list[Any], list[Any], list[Any], list[Any], dict[str, Any]]:
        lossy = config(tmp_path, lose_every=4)
        async with Simulator(lossy) as sim, aiohttp.ClientSession() as http:
            async with websockets.connect(sim.urls.okx_business) as ws:
                await ws.send(SUBSCRIBE % ("trades-all", "BTC-USDT"))
                pushes = (await frames_for(ws, 1.5))[1:]
            rows = [p["data"][0] for p in pushes]
            base = sim.urls.okx_rest + "/api/v5/market/history-trades?instId=BTC-USDT"
            after = int(rows[-1]["tradeId"]) + 1
            async with http.get(f"{base}&type=1&after={after}&limit=100") as response:
                older = (await response.json())["data"]
            async with http.get(f"{base}&before={rows[0]['tradeId']}&limit=5") as response:
                newer = (await response.json())["data"]
            async with http.get(
                f"{sim.urls.okx_rest}/api/v5/market/trades?instId=BTC-USDT&limit=3"
            ) as r:
                recent = (await r.json())["data"]
            url = f"{sim.urls.okx_rest}/api/v5/public/instruments?instType=SPOT"
            async with http.get(url) as response:
                listed = await response.json()
            return rows, older, newer, recent, listed

    streamed, older, newer, recent, listed = run_scenario(main, timeout=30)
    ids = [int(r["tradeId"]) for r in older]
    assert ids == sorted(ids, reverse=True) and ids[0] == int(streamed[-1]["tradeId"])
    sent = {int(r["tradeId"]) for r in streamed}
    lost = set(range(max(min(sent), ids[-1]), ids[0])) - sent
    assert lost and lost <= set(ids)
    by_id = {r["tradeId"]: r for r in older}
    for row in streamed:
        if row["tradeId"] in by_id:
            assert {**by_id[row["tradeId"]]} == row
    first = int(streamed[0]["tradeId"])
    assert [int(r["tradeId"]) for r in newer] == list(range(first + 5, first, -1))
    assert len(recent) == 3 and int(recent[0]["tradeId"]) > int(recent[1]["tradeId"])
    assert listed["code"] == "0"
    assert [(r["instId"], r["state"]) for r in listed["data"]] == [
        ("BTC-USDT", "live"), ("ETH-USDT", "live"),
    ]  # fmt: skip


def test_rest_beyond_its_limit_answers_429_with_50011(tmp_path: Path) -> None:
    """REST requests beyond the limit get a 429 with OKX's 50011 code."""

    async def main() -> list[tuple[int, str]]:
        async with Simulator(config(tmp_path, okx_rest_limit=2)) as sim:
            url = f"{sim.urls.okx_rest}/api/v5/market/trades?instId=BTC-USDT"
            answers = []
            async with aiohttp.ClientSession() as http:
                for _ in range(3):
                    async with http.get(url) as response:
                        answers.append((response.status, (await response.json())["code"]))
            return answers

    assert run_scenario(main, timeout=30) == [(200, "0"), (200, "0"), (429, "50011")]


def test_books_pushes_verify_by_checksum_and_sequence(tmp_path: Path) -> None:
    """A client subscribed to ``books`` of six instruments on the public endpoint verifies a few
    hundred pushes with K2's OKX verifier (checksum and ``prevSeqId`` chain), reads the REST
    book of one with its ``seqId``, and sees a dropped push as a sequence gap."""
    inst_ids = ("BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT", "DOGE-USDT", "BTC-USDC")
    wanted = 300

    async def main() -> tuple[Counter[Outcome], Any, Verdict]:
        settings = config(tmp_path, rate=900, skew=0.0, okx_symbols=inst_ids)
        async with (
            Simulator(settings) as sim,
            websockets.connect(sim.urls.okx_public) as ws,
            aiohttp.ClientSession() as http,
        ):
            args = [{"channel": "books", "instId": inst_id} for inst_id in inst_ids]
            await ws.send(json.dumps({"op": "subscribe", "args": args}))
            books, outcomes = OkxBooks(), Counter[Outcome]()
            while outcomes[Outcome.VERIFIED] < wanted:
                frame = load_json(await asyncio.wait_for(ws.recv(), 5))
                if isinstance(frame, dict) and "action" in frame:
                    outcomes.update(verdict.outcome for verdict in books.apply(read_push(frame))[1])
            params = {"instId": "BTC-USDT", "sz": "400"}
            async with http.get(f"{sim.urls.okx_rest}{wire.BOOKS_PATH}", params=params) as answer:
                rest = read_rest_snapshot("BTC-USDT", load_json(await answer.text()))
            sim.add_fault(FaultRule(protocol="okx-public", book_drop_every=7))
            broken = Verdict(Outcome.VERIFIED)
            while broken.verified:  # pushes already on their way come first
                frame = load_json(await asyncio.wait_for(ws.recv(), 5))
                if isinstance(frame, dict) and "action" in frame:
                    broken = books.apply(read_push(frame))[1][0]
        return outcomes, rest, broken

    outcomes, rest, broken = run_scenario(main, timeout=30)
    assert set(outcomes) == {Outcome.VERIFIED}
    assert isinstance(rest, OkxBookMessage) and rest.seq_id is not None and len(rest.bids) > 25
    assert broken.reason is Reason.SEQUENCE_GAP
