"""Faults on demand, seen from a client: drops, stalls, garbled and duplicated frames, lost ids."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import websockets

from k2.simulator import FaultRule, Simulator, read_ledger
from tests.simulated import run_scenario, simulator_configs

V2_TRADES = json.dumps(
    {
        "method": "subscribe",
        "params": {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": False},
    }
)


config = simulator_configs(
    rate=400, heartbeat_s=0.2, kraken_symbols=("XBT/USD",), binance_symbols=("BTCUSDT",)
)


async def receive_all(ws: Any, seconds: float) -> tuple[list[str], bool]:
    """Raw frames received within ``seconds``, and whether the connection ended meanwhile."""
    frames: list[str] = []
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            frames.append(await asyncio.wait_for(ws.recv(), left))
    except TimeoutError:
        return frames, False
    except websockets.ConnectionClosed:
        return frames, True
    return frames, False


def parses(frame: str) -> bool:
    try:
        json.loads(frame)
    except ValueError:
        return False
    return True


def v2_trade_ids(frames: list[str]) -> list[int]:
    parsed = [json.loads(f) for f in frames]
    return [t["trade_id"] for f in parsed if f.get("channel") == "trade" for t in f["data"]]


def test_drop_after_n_trades_delivers_exactly_n_then_cuts_without_close_frame(
    tmp_path: Path,
) -> None:
    """A connection dropped after n trades sends exactly the n trades its ledger records, then ends
    without a close frame, as a network failure would."""

    async def main() -> tuple[list[str], bool, Any, list[Any]]:
        rule = FaultRule(protocol="kraken-v2", drop_after_trades=7)
        async with Simulator(config(tmp_path, faults=(rule,))) as sim:
            async with websockets.connect(sim.urls.kraken_v2) as ws:
                await ws.send(V2_TRADES)
                frames, ended = await receive_all(ws, 5.0)
                close = ws.close_code
            return frames, ended, close, read_ledger(sim.ledger_path)  # type: ignore[arg-type]

    frames, ended, close, entries = run_scenario(main)
    assert ended and close == 1006  # no close frame: a network-style drop
    ids = v2_trade_ids(frames)
    assert len(ids) == 7 and [e.trade_id for e in entries] == ids


def test_drop_after_seconds(tmp_path: Path) -> None:
    """A connection dropped after a time ends at about that time."""

    async def main() -> tuple[bool, float]:
        rule = FaultRule(protocol="binance", drop_after_s=0.4)
        async with (
            Simulator(config(tmp_path, faults=(rule,))) as sim,
            websockets.connect(sim.urls.binance_ws + "/ws/btcusdt@trade") as ws,
        ):
            start = time.monotonic()
            _, ended = await receive_all(ws, 5.0)
            return ended, time.monotonic() - start

    ended, took = run_scenario(main)
    assert ended and 0.3 <= took < 3.0


def test_stall_with_heartbeats_sends_only_heartbeats(tmp_path: Path) -> None:
    """A connection stalled with heartbeats keeps sending heartbeats but no more trades, so only a
    per-symbol silence check can notice."""

    async def main() -> list[str]:
        rule = FaultRule(protocol="kraken", stall="heartbeats", stall_after_trades=3)
        async with (
            Simulator(config(tmp_path, faults=(rule,))) as sim,
            websockets.connect(sim.urls.kraken_v2) as ws,
        ):
            await ws.send(V2_TRADES)
            frames, _ = await receive_all(ws, 1.2)
            return frames

    frames = run_scenario(main)
    assert len(v2_trade_ids(frames)) == 3
    tail = frames[-3:]
    assert tail == ['{"channel":"heartbeat"}'] * 3


def test_silent_stall_sends_nothing_not_even_pongs(tmp_path: Path) -> None:
    """A silently stalled connection sends nothing, not even an answer to a ping, so only the
    client's liveness deadline can notice."""

    async def main() -> tuple[list[str], bool]:
        rule = FaultRule(protocol="binance", stall="silent")
        async with (
            Simulator(config(tmp_path, faults=(rule,))) as sim,
            websockets.connect(sim.urls.binance_ws + "/ws/btcusdt@trade") as ws,
        ):
            frames, _ = await receive_all(ws, 0.6)
            pong = await ws.ping()
            try:
                await asyncio.wait_for(pong, 0.5)
            except TimeoutError:
                return frames, False
            return frames, True

    frames, answered = run_scenario(main)
    assert frames == [] and not answered


def test_garbled_frames_are_every_nth_and_flagged_in_the_ledger(tmp_path: Path) -> None:
    """Exactly every nth frame arrives garbled, and the ledger marks the trades it held as never
    readable."""

    async def main() -> tuple[list[str], list[Any]]:
        rule = FaultRule(protocol="binance", garble_every=3)
        async with Simulator(config(tmp_path, faults=(rule,))) as sim:
            async with websockets.connect(sim.urls.binance_ws + "/ws/btcusdt@trade") as ws:
                frames, _ = await receive_all(ws, 1.0)
            return frames, read_ledger(sim.ledger_path)  # type: ignore[arg-type]

    frames, entries = run_scenario(main)
    bad = [index for index, frame in enumerate(frames) if not parses(frame)]
    assert len(frames) >= 6 and bad == list(range(2, len(frames), 3))
    flags = [entry.garbled for entry in entries[: len(frames)]]
    assert flags == [index in bad for index in range(len(frames))]


def test_duplicated_frames_arrive_twice(tmp_path: Path) -> None:
    """A duplicated frame arrives twice in a row, and the ledger marks the second copy as a
    duplicate."""

    async def main() -> tuple[list[str], list[Any]]:
        rule = FaultRule(protocol="binance", duplicate_every=1)
        async with Simulator(config(tmp_path, faults=(rule,))) as sim:
            async with websockets.connect(sim.urls.binance_ws + "/ws/btcusdt@trade") as ws:
                frames, _ = await receive_all(ws, 0.8)
            return frames, read_ledger(sim.ledger_path)  # type: ignore[arg-type]

    frames, entries = run_scenario(main)
    assert frames[0::2][: len(frames) // 2] == frames[1::2]
    assert [e.duplicate for e in entries[:4]] == [False, True, False, True]


def test_lost_ids_never_reach_the_socket_but_stay_in_rest(tmp_path: Path) -> None:
    """Lost trades never reach the socket but are in the REST history, so a client sees a gap it can
    backfill."""

    async def main() -> tuple[list[int], list[int]]:
        async with (
            Simulator(config(tmp_path, lose_every=4, lose_exchanges=("binance",))) as sim,
            aiohttp.ClientSession() as http,
        ):
            async with websockets.connect(sim.urls.binance_ws + "/ws/btcusdt@trade") as ws:
                frames, _ = await receive_all(ws, 1.0)
            streamed = [json.loads(f)["t"] for f in frames]
            url = sim.urls.binance_rest + "/api/v3/historicalTrades?symbol=BTCUSDT"
            url += f"&fromId={streamed[0]}"
            async with http.get(url) as response:
                rest = [row["id"] for row in await response.json()]
            return streamed, rest

    streamed, rest = run_scenario(main)
    missing = sorted(set(range(streamed[0], streamed[-1] + 1)) - set(streamed))
    assert missing and len(missing) >= len(streamed) // 4 - 1
    assert set(missing) <= set(rest)  # a gap a client can backfill over REST
    assert all(b - a in (1, 2) for a, b in itertools.pairwise(streamed))


def test_rejected_symbol_gets_the_exchange_error(tmp_path: Path) -> None:
    """A rejected Kraken pair gets Kraken's own refusal, as a real rejection would."""

    async def main() -> Any:
        rule = FaultRule(protocol="kraken-v2", reject_symbols=("BTC/USD",))
        async with (
            Simulator(config(tmp_path, faults=(rule,))) as sim,
            websockets.connect(sim.urls.kraken_v2) as ws,
        ):
            await ws.recv()  # status
            await ws.send(V2_TRADES)
            return json.loads(await ws.recv())

    ack = run_scenario(main)
    assert ack["success"] is False and ack["error"] == "Currency pair not supported BTC/USD"


def test_faults_set_at_run_time_reach_the_open_connection_only(tmp_path: Path) -> None:
    """A fault posted to the admin endpoint while the simulator runs reaches the open connection it
    names and no later one."""

    async def main() -> tuple[Any, bool, bool]:
        async with Simulator(config(tmp_path)) as sim, aiohttp.ClientSession() as http:
            url = sim.urls.binance_ws + "/ws/btcusdt@trade"
            async with websockets.connect(url) as first:
                await first.recv()
                rule = {"protocol": "binance", "connections": 1, "drop_after_trades": 0}
                async with http.post(sim.urls.admin + "/faults", json=rule) as response:
                    answer = await response.json()
                _, first_ended = await receive_all(first, 3.0)
            async with websockets.connect(url) as second:
                _, second_ended = await receive_all(second, 0.8)
            return answer, first_ended, second_ended

    answer, first_ended, second_ended = run_scenario(main)
    assert answer["reached"] == ["binance#1"] and answer["pending"] == []
    assert first_ended and not second_ended


def test_admin_refuses_unknown_fault_settings(tmp_path: Path) -> None:
    """The admin endpoint refuses a misspelt fault setting with a 400 naming it."""

    async def main() -> tuple[int, Any]:
        async with (
            Simulator(config(tmp_path)) as sim,
            aiohttp.ClientSession() as http,
            http.post(sim.urls.admin + "/faults", json={"drop": 1}) as response,
        ):
            return response.status, await response.json()

    status, body = run_scenario(main)
    assert status == 400 and "unknown fault setting" in body["error"]


def test_a_rejected_binance_symbol_is_silent_like_an_unknown_one(tmp_path: Path) -> None:
    """A rejected Binance symbol just sends nothing, as Binance does for a symbol it does not
    list."""

    async def main() -> list[str]:
        rule = FaultRule(protocol="binance", reject_symbols=("BTCUSDT",))
        async with (
            Simulator(config(tmp_path, faults=(rule,))) as sim,
            websockets.connect(sim.urls.binance_ws + "/ws/btcusdt@trade") as ws,
        ):
            frames, _ = await receive_all(ws, 0.6)
            return frames

    assert run_scenario(main) == []
