"""Kraken v1 and v2 as a client written from Kraken's documentation sees the simulator."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import websockets

from k2.exchanges.book import Level, OrderBook
from k2.exchanges.booksync import Outcome, Reason, Verdict
from k2.exchanges.kraken.book import KrakenBooks, read_v1, read_v2
from k2.exchanges.parse import load_json
from k2.simulator import FaultRule, Simulator, read_ledger
from k2.simulator.ledger import BookLedgerEntry, read_book_ledger
from tests.simulated import run_scenario, simulator_configs

Frame = Any


config = simulator_configs(
    rate=300,
    heartbeat_s=0.2,
    kraken_symbols=("XBT/USD", "ETH/USD", "XDG/USD"),
    binance_symbols=("BTCUSDT", "ETHUSDT"),
)


async def recv(ws: Any, timeout: float = 5) -> Frame:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def collect(ws: Any, seconds: float) -> list[Frame]:
    """Every frame received within ``seconds`` (polls until the deadline)."""
    frames = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(await recv(ws, left))
        except TimeoutError:
            break
    return frames


async def recv_until(ws: Any, wanted: Callable[[Frame], bool], timeout: float = 5) -> Frame:
    """The first frame ``wanted`` accepts (heartbeats may come first)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await recv(ws, max(0.0, deadline - time.monotonic()))
        if wanted(frame):
            return frame


def v1_subscribe(pairs: list[str], reqid: int = 42) -> str:
    return json.dumps(
        {"event": "subscribe", "pair": pairs, "subscription": {"name": "trade"}, "reqid": reqid}
    )


def v2_subscribe(symbols: list[str], snapshot: bool = True, req_id: int = 7) -> str:
    params = {"channel": "trade", "symbol": symbols, "snapshot": snapshot}
    return json.dumps({"method": "subscribe", "params": params, "req_id": req_id})


def test_v1_status_acks_snapshot_and_updates_match_the_ledger(tmp_path: Path) -> None:
    """The simulated Kraken v1 sends its status (with a 64-bit connection id), an ack per pair, a
    snapshot, then updates that are exactly the ledger's trades in id order."""

    async def main() -> None:
        async with Simulator(config(tmp_path)) as sim:
            await asyncio.sleep(0.4)  # some history for the snapshot
            async with websockets.connect(sim.urls.kraken_v1) as ws:
                status = await recv(ws)
                await ws.send(v1_subscribe(["XBT/USD", "ETH/USD"]))
                frames = await collect(ws, 1.0)
            entries = read_ledger(sim.ledger_path)  # type: ignore[arg-type]
        assert status["event"] == "systemStatus" and status["status"] == "online"
        assert status["connectionID"] >= 2**63  # a u64 that overflows int64, kept exact
        acks = [f for f in frames if isinstance(f, dict) and f.get("event") == "subscriptionStatus"]
        assert [(a["pair"], a["status"], a["reqid"]) for a in acks] == [
            ("XBT/USD", "subscribed", 42),
            ("ETH/USD", "subscribed", 42),
        ]
        trade_frames = [f for f in frames if isinstance(f, list)]
        first_xbt = next(f for f in trade_frames if f[3] == "XBT/USD")
        assert 0 < len(first_xbt[1]) <= 50 and first_xbt[2] == "trade"
        for pair in ("XBT/USD", "ETH/USD"):
            received = [row for f in trade_frames if f[3] == pair for row in f[1]]
            sent = [e for e in entries if e.symbol == pair]
            assert received  # the ledger may hold more: sent while the client was closing
            assert received == [list(e.fields.values()) for e in sent[: len(received)]]
            ids = [e.trade_id for e in sent]
            assert ids == list(range(ids[0], ids[0] + len(ids)))  # per-pair order, no gaps

    run_scenario(main)


def test_v1_heartbeats_when_idle_and_pong_echoes_reqid(tmp_path: Path) -> None:
    """The simulated Kraken v1 sends heartbeats when no trade comes and answers a ping with a pong
    echoing its reqid."""

    async def main() -> None:
        async with (
            Simulator(config(tmp_path, trades_per_symbol=3)) as sim,
            websockets.connect(sim.urls.kraken_v1) as ws,
        ):
            await recv(ws)
            await ws.send(v1_subscribe(["XDG/USD"]))
            frames = await collect(ws, 1.0)
            await ws.send(json.dumps({"event": "ping", "reqid": 9}))
            pong = await recv_until(ws, lambda f: f.get("event") == "pong")
        assert frames.count({"event": "heartbeat"}) >= 3
        assert pong == {"event": "pong", "reqid": 9}

    run_scenario(main)


def test_v1_refuses_unknown_and_malformed_pairs(tmp_path: Path) -> None:
    """The simulated Kraken v1 refuses unknown and malformed pairs with Kraken's own errors,
    including the v2 name of a v1 pair."""

    async def main() -> list[Frame]:
        async with (
            Simulator(config(tmp_path)) as sim,
            websockets.connect(sim.urls.kraken_v1) as ws,
        ):
            await recv(ws)
            await ws.send(v1_subscribe(["XBT/FOO", "XBTUSD", "BTC/USD"]))
            return [await recv(ws) for _ in range(3)]

    errors = run_scenario(main)
    assert [(e["status"], e["errorMessage"]) for e in errors] == [
        ("error", "Currency pair not supported XBT/FOO"),
        ("error", "Currency pair not in ISO 4217-A3 format XBTUSD"),
        ("error", "Currency pair not supported BTC/USD"),  # v1 wants the wsname XBT/USD
    ]


def test_v2_status_acks_snapshot_and_sequential_ids(tmp_path: Path) -> None:
    """The simulated Kraken v2 acks each symbol as Kraken does (refusing the v1 name), sends a
    snapshot then updates, and the ids follow the ledger."""

    async def main() -> tuple[Frame, list[Frame], list[Any]]:
        async with Simulator(config(tmp_path)) as sim:
            await asyncio.sleep(0.4)
            async with websockets.connect(sim.urls.kraken_v2) as ws:
                status = await recv(ws)
                await ws.send(v2_subscribe(["BTC/USD", "XBT/USD", "DOGE/USD"]))
                frames = await collect(ws, 1.0)
            return status, frames, read_ledger(sim.ledger_path)  # type: ignore[arg-type]

    status, frames, entries = run_scenario(main)
    assert status["channel"] == "status" and status["data"][0]["connection_id"] >= 2**63
    acks = [f for f in frames if f.get("method") == "subscribe"]
    assert [(a["success"], a.get("result", {}).get("symbol"), a.get("error")) for a in acks] == [
        (True, "BTC/USD", None),
        (False, None, "Currency pair not supported XBT/USD"),  # v2 wants BTC, not XBT
        (True, "DOGE/USD", None),
    ]
    assert all({"time_in", "time_out", "req_id"} <= set(ack) for ack in acks)
    trades = [f for f in frames if f.get("channel") == "trade"]
    btc = [f for f in trades if f["data"][0]["symbol"] == "BTC/USD"]
    assert btc[0]["type"] == "snapshot" and 0 < len(btc[0]["data"]) <= 50
    assert {f["type"] for f in btc[1:]} == {"update"}
    ids = [row["trade_id"] for f in btc for row in f["data"]]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    sent = [e.trade_id for e in entries if e.symbol == "BTC/USD"]
    assert sent[: len(ids)] == ids


def test_v2_without_snapshot_pong_and_heartbeat(tmp_path: Path) -> None:
    """A Kraken v2 subscription without a snapshot gets only new trades, heartbeats while idle, and
    pongs with their times."""

    async def main() -> tuple[list[Frame], Frame]:
        async with Simulator(config(tmp_path, trades_per_symbol=2)) as sim:
            await asyncio.sleep(0.3)
            async with websockets.connect(sim.urls.kraken_v2) as ws:
                await recv(ws)
                await ws.send(v2_subscribe(["ETH/USD"], snapshot=False))
                frames = await collect(ws, 1.0)
                await ws.send(json.dumps({"method": "ping", "req_id": 101}))
                return frames, await recv_until(ws, lambda f: f.get("method") == "pong")

    frames, pong = run_scenario(main)
    assert [f for f in frames if f.get("channel") == "trade"] == []
    assert frames.count({"channel": "heartbeat"}) >= 3
    assert pong["method"] == "pong" and pong["req_id"] == 101
    assert pong["time_in"].endswith("Z") and pong["time_out"] >= pong["time_in"]


def test_a_connection_that_never_subscribes_is_closed(tmp_path: Path) -> None:
    """The simulated Kraken closes a connection that never subscribes, as Kraken does."""

    async def main() -> int | None:
        async with (
            Simulator(config(tmp_path, kraken_idle_s=0.3)) as sim,
            websockets.connect(sim.urls.kraken_v1) as ws,
        ):
            await recv(ws)
            try:
                await recv(ws, 3.0)
            except websockets.ConnectionClosed:
                return ws.close_code
            return None

    assert run_scenario(main) == 1000


def test_replayed_recording_is_sent_exactly_as_recorded(tmp_path: Path) -> None:
    """A replayed Kraken recording is sent exactly as recorded."""
    recording = Path(__file__).resolve().parents[1] / "fixtures" / "recordings" / "KRAKEN.ws.48.0"

    async def main() -> list[Frame]:
        replay = {"replay": (recording,), "replay_speed": 0.0}
        async with (
            Simulator(config(tmp_path, **replay)) as sim,
            websockets.connect(sim.urls.kraken_v1) as ws,
        ):
            await asyncio.sleep(0.2)
            await recv(ws)
            await ws.send(v1_subscribe(["XMR/USD"]))
            return [await recv(ws) for _ in range(2)]

    ack, snapshot = run_scenario(main)
    assert ack["status"] == "subscribed"
    assert snapshot[1] == [
        ["354.11000000", "0.89594024", "1618678142.557535", "s", "l", ""],
        ["354.55000000", "1.25690315", "1618678145.715785", "b", "m", ""],
        ["354.04000000", "0.28245396", "1618678150.826417", "s", "m", ""],
        ["353.81000000", "1.71754604", "1618678150.827816", "s", "m", ""],
    ]


def test_v2_book_updates_verify_against_kraken_checksums(tmp_path: Path) -> None:
    """A v2 client subscribed to ``book`` at depth 25 gets the ack, a snapshot and a few hundred
    updates that K2's Kraken verifier checks one by one (each checksum matches its book); the
    ledger's lines rebuild the book the client held, and an injected wrong checksum is
    caught."""
    wanted = 300

    async def main() -> tuple[list[Verdict], list[BookLedgerEntry], Verdict, OrderBook]:
        settings = config(tmp_path, rate=600, kraken_symbols=("XBT/USD",))
        async with Simulator(settings) as sim, websockets.connect(sim.urls.kraken_v2) as ws:
            request = {"channel": "book", "symbol": ["BTC/USD"], "depth": 25}
            await ws.send(json.dumps({"method": "subscribe", "params": request}))
            ack = await recv_until(ws, lambda f: f.get("method") == "subscribe")
            assert ack["success"] and ack["result"]["depth"] == 25
            books, verdicts = KrakenBooks(25), []
            while len(verdicts) < wanted:
                frame = load_json(await asyncio.wait_for(ws.recv(), 5))
                if isinstance(frame, dict) and frame.get("channel") == "book":
                    verdicts.append(books.apply(read_v2(frame))[1])
            held = OrderBook(25)  # what the client holds after the messages it verified
            held.replace(*books.book("BTC/USD").book.top(25))
            sim.add_fault(FaultRule(protocol="kraken-v2", book_checksum_every=1))
            broken = verdicts[-1]
            while broken.verified:  # updates already on their way come first
                frame = load_json(await asyncio.wait_for(ws.recv(), 5))
                if isinstance(frame, dict) and frame.get("channel") == "book":
                    _, broken = books.apply(read_v2(frame))
        assert sim.ledger_path is not None
        return verdicts, read_book_ledger(sim.ledger_path), broken, held

    verdicts, entries, broken, held = run_scenario(main, timeout=30)
    assert all(verdict.outcome is Outcome.VERIFIED for verdict in verdicts)
    rebuilt = OrderBook(25)  # the ledger's lines up to the last of those messages
    for entry in entries[:wanted]:
        bids, asks = _levels(entry.bids), _levels(entry.asks)
        if entry.type == "snapshot":
            rebuilt.replace(bids, asks)
        else:
            rebuilt.update(bids, asks)
    assert rebuilt.top(25) == held.top(25)
    assert [entry.type for entry in entries[:2]] == ["snapshot", "update"]
    assert len(entries) >= wanted and all(entry.fault is None for entry in entries[:wanted])
    assert broken.reason is Reason.CHECKSUM_MISMATCH
    assert any(entry.fault == "bad_checksum" for entry in entries)


def test_v1_book_frames_verify_against_kraken_checksums(tmp_path: Path) -> None:
    """A v1 client subscribed to ``book`` of two pairs at depth 10 gets a ``subscriptionStatus``
    per pair on channel ``book-10``, then snapshots and a few hundred updates that K2's Kraken
    verifier checks one by one; unsubscribing is acknowledged."""
    wanted = 300

    async def main() -> Counter[Outcome]:
        settings = config(tmp_path, rate=600, kraken_symbols=("XBT/USD", "ETH/USD"))
        async with Simulator(settings) as sim, websockets.connect(sim.urls.kraken_v1) as ws:
            subscription = {"name": "book", "depth": 10}
            request = {"event": "subscribe", "pair": ["XBT/USD", "ETH/USD"]}
            await ws.send(json.dumps({**request, "subscription": subscription}))
            books, outcomes = KrakenBooks(), Counter[Outcome]()
            while outcomes[Outcome.VERIFIED] < wanted:
                frame = load_json(await asyncio.wait_for(ws.recv(), 5))
                if isinstance(frame, dict):
                    assert frame.get("status") != "error", frame
                    continue
                outcomes[books.apply(read_v1(frame))[1].outcome] += 1
            request = {"event": "unsubscribe", "pair": ["XBT/USD"]}
            await ws.send(json.dumps({**request, "subscription": subscription}))
            gone = await recv_until(
                ws, lambda f: isinstance(f, dict) and f.get("status") == "unsubscribed"
            )
            assert gone["channelName"] == "book-10"
        return outcomes

    assert set(run_scenario(main, timeout=30)) == {Outcome.VERIFIED}


def _levels(texts: tuple[tuple[str, str], ...]) -> list[Level]:
    """Ledger levels as book levels."""
    return [Level(Decimal(price), Decimal(size), price, size) for price, size in texts]
