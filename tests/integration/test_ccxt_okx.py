"""A widely used third-party client, ccxt's ``okx`` (async, ``ccxt.pro``), pointed at the
simulator by URL alone, loads its markets, watches trades and reads the REST history."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.pro
import pytest

from k2.simulator import Simulator, read_ledger
from tests.simulated import simulator_configs

pytestmark = pytest.mark.timeout(90)


def test_ccxt_watch_trades_receives_the_simulators_trades(tmp_path: Path) -> None:
    """watchTrades (``trades`` on /ws/v5/public) gets trades the ledger says were sent, with
    their ids, prices, amounts and taker sides; fetchTrades reads the same history."""
    config = simulator_configs(rate=200, okx_symbols=("BTC-USDT", "ETH-USDT"))(tmp_path)

    async def scenario() -> tuple[list[Any], list[Any]]:
        async with Simulator(config) as sim:
            urls = {"api": {"rest": sim.urls.okx_rest, "ws": sim.urls.okx_ws}}
            exchange = ccxt.pro.okx({"urls": urls})
            try:
                watched: list[Any] = []
                async with asyncio.timeout(30):
                    while len(watched) < 20:
                        watched += await exchange.watch_trades("BTC/USDT")
                fetched = await exchange.fetch_trades("BTC/USDT", limit=5)
            finally:
                await exchange.close()
            return watched, fetched

    watched, fetched = asyncio.run(scenario())
    sent = {e.fields["tradeId"]: e.fields for e in read_ledger(tmp_path / "ledger.jsonl")}
    assert len(watched) >= 20
    for trade in watched:
        row = sent[trade["id"]]
        assert trade["symbol"] == "BTC/USDT" and trade["side"] == row["side"]
        assert Decimal(str(trade["price"])) == Decimal(str(row["px"]))
        assert trade["timestamp"] == int(str(row["ts"]))
    assert len(fetched) == 5 and all(t["symbol"] == "BTC/USDT" for t in fetched)
