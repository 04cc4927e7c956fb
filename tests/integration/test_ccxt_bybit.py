"""A widely used client, ccxt's ``watchTrades`` for Bybit, pointed at the simulator by URL only,
receives the trades the simulator sent, each with its id, taker side and values."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import ccxt.pro as ccxtpro
import pytest

from k2.simulator.server import Simulator

from .test_feeds_vs_simulator import ledger_by_symbol, run
from .test_simulator_bybit import sim_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def pointed_at(sim: Simulator) -> Any:
    """ccxt's Bybit client with every REST base and the public spot stream on the simulator."""
    exchange = ccxtpro.bybit()
    api = dict(exchange.urls["api"])
    for name in ("spot", "futures", "v2", "public", "private"):
        api[name] = sim.urls.bybit_rest
    public = {**api["ws"]["public"], "spot": sim.urls.bybit_spot}
    api["ws"] = {**api["ws"], "public": public}
    exchange.urls["api"] = api
    return exchange


def test_ccxt_watch_trades_receives_the_simulated_trades(tmp_path: Path) -> None:
    """ccxt loads Bybit's markets from the simulator, subscribes, and every trade it hands
    over is one the simulator sent, with the same id, taker side, price and size."""

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path, rate=400)) as sim:
            exchange = pointed_at(sim)
            got: list[dict[str, Any]] = []
            try:
                async with asyncio.timeout(60):
                    while len({t["symbol"] for t in got}) < 2 or len(got) < 50:
                        for symbol in ("BTC/USDT", "ETH/USDT"):
                            got += await exchange.watch_trades(symbol)
            finally:
                await exchange.close()
            sent = ledger_by_symbol(sim.ledger_path)
        by_id = {str(e.fields["i"]): e for entries in sent.values() for e in entries}
        assert {t["symbol"] for t in got} == {"BTC/USDT", "ETH/USDT"}
        for trade in got:
            entry = by_id[trade["id"]]
            fields = {k: v for k, v in entry.fields.items() if k not in ("ts", "type")}
            assert trade["info"] == fields
            assert trade["side"] == str(entry.fields["S"]).lower()
            assert trade["timestamp"] == entry.fields["T"]
            assert trade["symbol"].replace("/", "") == entry.symbol

    run(scenario)
