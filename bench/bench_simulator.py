"""Simulator → client throughput over a real socket, per protocol.

The simulator runs as its own process (``k2 simulate``), as it does in the end-to-end tests, and a
picows client in this process (frames counted in the C-parsed callback, so the client is not the
limit) subscribes and counts the trades it receives for a few seconds. Reported per protocol:
trades/s received, frames/s, and the rate the market generated in the same window (read from the
simulator's status endpoint), so a client-side or server-side limit can be told apart. The
simulator runs without a ledger here (as in every benchmark); the ledger is exact at any rate,
but writing it costs the simulator CPU that the benchmark wants for sending.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.services import start_simulator

# Asked of the simulator per protocol: the rates it must carry to one client (Kraken v2 and
# Binance: the ingest benchmark's needs); received close to asked means it keeps up. Asking
# far more than it can send only slows it (it generates every trade asked for).
RATE = {"kraken_v2": 200_000, "kraken_v1": 100_000, "binance_trade_combined": 100_000}
SECONDS = 3.0

Count = Callable[[str], int]


def _generated(admin: str) -> int:
    with urllib.request.urlopen(admin + "/status") as response:
        status = json.load(response)
    return sum(
        head["trades"] for exchange in status["markets"].values() for head in exchange.values()
    )


def _kraken_v2_count(frame: str) -> int:
    if frame.startswith('{"channel":"trade"'):
        return frame.count('"trade_id"')
    return 0


def _binance_count(frame: str) -> int:
    return 1 if '"e":"trade"' in frame else 0


def _kraken_v1_count(frame: str) -> int:
    if frame.startswith("["):
        return frame.count('",""]')
    return 0


class _Counter(WSListener):
    """Counts frames and trades as picows delivers them."""

    def __init__(self, count: Count) -> None:
        super().__init__()
        self.count = count
        self.frames = 0
        self.trades = 0
        self.counting = False

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.TEXT and self.counting:
            self.frames += 1
            self.trades += self.count(frame.get_payload_as_ascii_text())


async def _measure(
    url: str, request: str | None, count: Count, admin: str, server: psutil.Process
) -> dict[str, Any]:
    transport, client = await ws_connect(lambda: _Counter(count), url)
    assert isinstance(client, _Counter)
    try:
        if request is not None:
            transport.send(WSMsgType.TEXT, request.encode())
        await asyncio.sleep(0.5)
        client.counting = True
        generated_before = _generated(admin)
        server_cpu = server.cpu_times()
        client_cpu = time.process_time()
        start = time.monotonic()
        await asyncio.sleep(SECONDS)
        elapsed = time.monotonic() - start
        client.counting = False
        client_busy = time.process_time() - client_cpu
        now_cpu = server.cpu_times()
        server_busy = now_cpu.user + now_cpu.system - server_cpu.user - server_cpu.system
        generated = _generated(admin) - generated_before
    finally:
        transport.disconnect()
    return {
        "trades_per_s": round(client.trades / elapsed),
        "frames_per_s": round(client.frames / elapsed),
        "generated_per_s": round(generated / elapsed),
        "server_cpu_percent": round(100 * server_busy / elapsed),
        "client_cpu_percent": round(100 * client_busy / elapsed),
    }


def _scenario(
    rate: int, kraken: str, binance: str, path: str, request: str | None, count: Count
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        process, urls = start_simulator(rate, kraken, binance, 400_000, Path(folder))
        try:
            base = urls["kraken_v1"].rstrip("/")
            server = psutil.Process(process.pid)
            measured = asyncio.run(_measure(base + path, request, count, urls["admin"], server))
            return {"requested_per_s": rate, **measured}
        finally:
            process.terminate()
            process.wait(timeout=10)


def run() -> dict[str, Any]:
    """Trades per second a plain client receives from the simulator, per protocol."""
    v2 = json.dumps(
        {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD", "ETH/USD"]}}
    )
    v1 = json.dumps(
        {"event": "subscribe", "pair": ["XBT/USD", "ETH/USD"], "subscription": {"name": "trade"}}
    )
    return {
        "seconds": SECONDS,
        "kraken_v2": _scenario(
            RATE["kraken_v2"], "XBT/USD,ETH/USD", "", "/v2", v2, _kraken_v2_count
        ),
        "kraken_v1": _scenario(RATE["kraken_v1"], "XBT/USD,ETH/USD", "", "/", v1, _kraken_v1_count),
        "binance_trade_combined": _scenario(
            RATE["binance_trade_combined"],
            "",
            "BTCUSDT,ETHUSDT",
            "/stream?streams=btcusdt@trade/ethusdt@trade",
            None,
            _binance_count,
        ),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
