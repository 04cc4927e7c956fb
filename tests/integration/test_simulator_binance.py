"""Binance spot streams as a client written from Binance's documentation sees the simulator."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from k2.exchanges.binance.book import BinanceBooks, DepthSnapshot, read_snapshot, read_update
from k2.exchanges.booksync import Outcome, Reason, Verdict
from k2.exchanges.parse import load_json
from k2.simulator import FaultRule, Simulator, read_ledger
from k2.simulator.ledger import BookLedgerEntry, read_book_ledger
from tests.simulated import closed_within, collect, run_scenario, simulator_configs

config = simulator_configs(
    rate=300, kraken_symbols=("XBT/USD",), binance_symbols=("BTCUSDT", "ETHUSDT")
)


def test_combined_streams_wrap_payloads_in_microseconds(tmp_path: Path) -> None:
    """A combined-stream connection gets each trade wrapped with its stream name, in microseconds
    when asked, with consecutive ids and exactly what the ledger records."""

    async def main() -> tuple[list[Any], list[Any]]:
        async with Simulator(config(tmp_path)) as sim:
            url = sim.urls.binance_ws + "/stream?streams=btcusdt@trade/ethusdt@trade"
            async with websockets.connect(url + "&timeUnit=MICROSECOND") as ws:
                frames = await collect(ws, 1.0)
            return frames, read_ledger(sim.ledger_path)  # type: ignore[arg-type]

    frames, entries = run_scenario(main)
    assert frames and {f["stream"] for f in frames} == {"btcusdt@trade", "ethusdt@trade"}
    for frame in frames:
        data = frame["data"]
        assert data["e"] == "trade" and data["M"] is True
        assert data["s"] == frame["stream"].split("@")[0].upper()
        assert len(str(data["T"])) == 16 and data["E"] >= data["T"]
    btc = [f["data"]["t"] for f in frames if f["stream"] == "btcusdt@trade"]
    assert btc == list(range(btc[0], btc[0] + len(btc)))
    assert [dict(e.fields) for e in entries[: len(frames)]] == [f["data"] for f in frames]


def test_raw_stream_sends_bare_aggtrade_payloads(tmp_path: Path) -> None:
    """A raw aggTrade stream sends bare payloads in milliseconds, with consecutive aggregate ids
    covering consecutive trades."""

    async def main() -> list[Any]:
        async with (
            Simulator(config(tmp_path)) as sim,
            websockets.connect(sim.urls.binance_ws + "/ws/btcusdt@aggTrade") as ws,
        ):
            return await collect(ws, 1.0)

    aggs = run_scenario(main)
    assert aggs and all(a["e"] == "aggTrade" and "stream" not in a for a in aggs)
    assert len(str(aggs[0]["T"])) == 13  # milliseconds by default
    assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + len(aggs)))
    assert all(b["f"] == a["l"] + 1 for a, b in pairwise(aggs))


def test_live_requests_accept_unknown_symbols_and_refuse_malformed_streams(
    tmp_path: Path,
) -> None:
    """Live SUBSCRIBE requests accept a symbol Binance does not list (which then sends nothing) and
    refuse a malformed stream name, as Binance does."""

    async def main() -> list[Any]:
        async with (
            Simulator(config(tmp_path)) as sim,
            websockets.connect(sim.urls.binance_ws + "/ws") as ws,
        ):
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["xrpxrp@trade"], "id": 1}))
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["@@@lixo###"], "id": 2}))
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
            return await collect(ws, 1.0)

    assert run_scenario(main) == [
        {"result": None, "id": 1},
        {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 2},
        {"result": ["xrpxrp@trade"], "id": 3},
    ]  # and the unknown symbol never sends a trade


def test_ping_frames_keep_a_client_that_answers_and_drop_one_that_does_not(
    tmp_path: Path,
) -> None:
    """The simulated Binance pings every connection, keeps a client that answers and drops one that
    does not."""

    async def main() -> tuple[int, bool, bool]:
        timings = {"binance_ping_s": 0.3, "binance_pong_timeout_s": 0.8}
        async with (
            Simulator(config(tmp_path, rate=0, **timings)) as sim,
            aiohttp.ClientSession() as http,
        ):
            url = sim.urls.binance_ws + "/ws/btcusdt@trade"
            async with http.ws_connect(url, autoping=False) as mute:
                pings = 0
                while not mute.closed:
                    message = await mute.receive()
                    pings += message.type == aiohttp.WSMsgType.PING
                mute_dropped = mute.closed
            async with websockets.connect(url) as answering:  # pongs automatically
                kept = not await closed_within(answering, 1.5)
            return pings, mute_dropped, kept

    pings, mute_dropped, kept = run_scenario(main)
    assert pings >= 2 and mute_dropped and kept


def test_more_than_five_control_messages_a_second_disconnect(tmp_path: Path) -> None:
    """A client sending more than five control messages in a second is disconnected, as on
    Binance."""

    async def main() -> bool:
        async with (
            Simulator(config(tmp_path)) as sim,
            websockets.connect(sim.urls.binance_ws + "/ws") as ws,
        ):
            for request_id in range(6):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id}))
            return await closed_within(ws, 2.0)

    assert run_scenario(main)


def test_connection_age_limit_closes_the_connection(tmp_path: Path) -> None:
    """A connection older than its age limit is closed normally, as Binance does after 24 hours."""

    async def main() -> int | None:
        async with (
            Simulator(config(tmp_path, max_connection_age_s=0.5)) as sim,
            websockets.connect(sim.urls.binance_ws + "/ws/btcusdt@trade") as ws,
        ):
            assert await closed_within(ws, 3.0)
            return ws.close_code

    assert run_scenario(main) == 1000


@pytest.mark.parametrize("combined", [True, False])
def test_server_shutdown_is_announced_then_the_connection_ends(
    tmp_path: Path, combined: bool
) -> None:
    """A server shutdown is announced on every stream, raw or combined, before the connection
    ends."""
    path = "/stream?streams=btcusdt@trade" if combined else "/ws/btcusdt@trade"

    async def main() -> list[Any]:
        async with (
            Simulator(config(tmp_path, rate=0, shutdown_grace_s=0.3)) as sim,
            websockets.connect(sim.urls.binance_ws + path) as ws,
        ):
            assert sim.shutdown() == 1
            frames = await collect(ws, 0.2)
            assert await closed_within(ws, 2.0)
            return frames

    (frame,) = run_scenario(main)
    payload = frame["data"] if combined else frame
    assert payload["e"] == "serverShutdown" and isinstance(payload["E"], int)
    if combined:
        assert frame["stream"] == "!serverShutdown"


def test_server_shutdown_after_a_configured_time(tmp_path: Path) -> None:
    """A shutdown configured after a time is announced at that time, then the connection ends."""

    async def main() -> list[Any]:
        overrides = {"rate": 0, "shutdown_after_s": 0.3, "shutdown_grace_s": 0.2}
        async with (
            Simulator(config(tmp_path, **overrides)) as sim,
            websockets.connect(sim.urls.binance_ws + "/ws/btcusdt@trade") as ws,
        ):
            frames = await collect(ws, 0.6)
            assert await closed_within(ws, 2.0)
            return frames

    assert [f["e"] for f in run_scenario(main)] == ["serverShutdown"]


def test_malformed_stream_in_the_url_is_refused(tmp_path: Path) -> None:
    """A connect URL naming a malformed stream is refused with a 400."""

    async def main() -> int:
        async with (
            Simulator(config(tmp_path)) as sim,
            aiohttp.ClientSession() as http,
            http.get(sim.urls.binance_rest + "/stream?streams=@@@lixo###") as response,
        ):
            return response.status

    assert run_scenario(main) == 400


def test_stream_limit_per_connection(tmp_path: Path) -> None:
    """A subscription that would pass a connection's stream limit is refused, and a smaller one is
    still accepted."""

    async def main() -> list[Any]:
        async with (
            Simulator(config(tmp_path, binance_max_streams=2)) as sim,
            websockets.connect(sim.urls.binance_ws + "/ws/btcusdt@trade") as ws,
        ):
            streams = ["ethusdt@trade", "ethusdt@aggTrade"]
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}))
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams[:1], "id": 2}))
            frames = await collect(ws, 0.8)
            return [f for f in frames if "id" in f]

    assert run_scenario(main) == [
        {"error": {"code": 2, "msg": "Invalid request: too many parameters"}, "id": 1},
        {"result": None, "id": 2},
    ]


@pytest.mark.parametrize("path", ["/ws", "/ws/k2-listen-key"])
def test_a_bare_raw_connection_subscribes_with_subscribe_messages(
    tmp_path: Path, path: str
) -> None:
    """``/ws`` or ``/ws/<any name>``, then SUBSCRIBE: raw trade payloads follow, as on Binance."""

    async def main() -> list[Any]:
        async with (
            Simulator(config(tmp_path, rate=600)) as sim,
            websockets.connect(sim.urls.binance_ws + path) as ws,
        ):
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 7}))
            return await collect(ws, 1.5)

    frames = run_scenario(main)
    assert frames[0] == {"result": None, "id": 7}
    trades = frames[1:]
    assert trades and all(t["e"] == "trade" and t["s"] == "BTCUSDT" for t in trades)
    assert [t["t"] for t in trades] == list(range(trades[0]["t"], trades[0]["t"] + len(trades)))


def test_depth_streams_chain_onto_rest_snapshots_as_binance_documents(tmp_path: Path) -> None:
    """A client following Binance's procedure (buffer the diff depth events, fetch
    ``/api/v3/depth``, place the buffer on it) verifies a few hundred ``@depth@100ms`` events
    of six symbols with K2's Binance verifier; a stale snapshot is refused as too old and the
    next one places the same buffer."""
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "DOGEUSDT", "ADAUSDT")
    wanted = 300

    async def main() -> tuple[Counter[Outcome], list[Verdict], list[BookLedgerEntry]]:
        settings = config(tmp_path, rate=900, skew=0.0, binance_symbols=symbols)
        async with Simulator(settings) as sim:
            streams = "/".join(f"{symbol.lower()}@depth@100ms" for symbol in symbols)
            books, outcomes = BinanceBooks(), Counter[Outcome]()
            sim.add_fault(FaultRule(protocol="binance", stale_snapshots=1))
            url = f"{sim.urls.binance_ws}/stream?streams={streams}"
            async with websockets.connect(url) as ws, aiohttp.ClientSession() as http:
                while not all(books.book(symbol).buffer for symbol in symbols):
                    books.apply(read_update(load_json(await asyncio.wait_for(ws.recv(), 5))))
                snapshots = []
                for symbol in symbols:
                    for _ in range(2):  # the first may be the stale one
                        path = f"{sim.urls.binance_rest}/api/v3/depth"
                        params = {"symbol": symbol, "limit": "1000"}
                        async with http.get(path, params=params) as response:
                            snapshot = read_snapshot(load_json(await response.text()))
                        assert isinstance(snapshot, DepthSnapshot)
                        placed = books.book(symbol).apply_snapshot(snapshot)
                        snapshots.append(placed[0])
                        if placed[0].verified:
                            break
                while outcomes[Outcome.VERIFIED] < wanted:
                    frame = load_json(await asyncio.wait_for(ws.recv(), 5))
                    outcomes[books.apply(read_update(frame))[1].outcome] += 1
        assert sim.ledger_path is not None
        return outcomes, snapshots, read_book_ledger(sim.ledger_path)

    outcomes, snapshots, entries = run_scenario(main, timeout=30)
    assert set(outcomes) <= {Outcome.VERIFIED, Outcome.IGNORED}
    assert [verdict.reason for verdict in snapshots if not verdict.verified] == [
        Reason.SNAPSHOT_TOO_OLD
    ]
    assert sum(verdict.verified for verdict in snapshots) == len(symbols)
    rest = [entry for entry in entries if entry.connection == "rest"]
    assert [entry.fault for entry in rest].count("stale_snapshot") == 1
    assert len(entries) - len(rest) >= 300
