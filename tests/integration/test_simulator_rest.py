"""The REST endpoints answer from the same history the sockets stream, in the exchanges' shapes."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import websockets

from k2.simulator import Simulator, read_ledger
from tests.simulated import run_scenario, simulator_configs

config = simulator_configs(
    rate=300, kraken_symbols=("XBT/USD", "ETH/USD"), binance_symbols=("BTCUSDT", "DOGEUSDT")
)


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any, Any]:
    async with http.get(url) as response:
        return response.status, await response.json(), response.headers


async def stream(url: str, request: str | None, seconds: float) -> list[Any]:
    frames = []
    async with websockets.connect(url) as ws:
        if request is not None:
            await ws.send(request)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
            except TimeoutError:
                break
    return frames


def test_binance_trade_history_matches_the_stream_and_the_ledger(tmp_path: Path) -> None:
    """The simulated Binance REST history holds exactly the trades the stream sent, with exact quote
    quantities, so a backfill recovers what was streamed."""

    async def main() -> tuple[list[Any], list[Any], list[Any], Any]:
        async with Simulator(config(tmp_path)) as sim, aiohttp.ClientSession() as http:
            frames = await stream(sim.urls.binance_ws + "/ws/btcusdt@trade", None, 0.8)
            first = frames[0]["t"]
            base = sim.urls.binance_rest + "/api/v3/historicalTrades?symbol=BTCUSDT"
            _, history, _ = await get(http, f"{base}&fromId={first}&limit=1000")
            _, recent, _ = await get(
                http, sim.urls.binance_rest + "/api/v3/trades?symbol=BTCUSDT&limit=3"
            )
            return frames, history, recent, read_ledger(sim.ledger_path)  # type: ignore[arg-type]

    frames, history, recent, entries = run_scenario(main)
    by_id = {row["id"]: row for row in history}
    for frame in frames:
        row = by_id[frame["t"]]
        assert (row["price"], row["qty"], row["time"]) == (frame["p"], frame["q"], frame["T"])
        assert row["isBuyerMaker"] is frame["m"]
        assert Decimal(row["quoteQty"]) == Decimal(frame["p"]) * Decimal(frame["q"])
    assert [e.trade_id for e in entries][: len(frames)] == [f["t"] for f in frames]
    assert len(recent) == 3 and recent[-1]["id"] >= frames[-1]["t"]


def test_binance_aggtrades_match_the_aggtrade_stream(tmp_path: Path) -> None:
    """The simulated Binance aggTrades history holds exactly the aggregate trades the stream
    sent."""

    async def main() -> tuple[list[Any], list[Any]]:
        async with Simulator(config(tmp_path)) as sim, aiohttp.ClientSession() as http:
            frames = await stream(sim.urls.binance_ws + "/ws/dogeusdt@aggTrade", None, 0.8)
            url = sim.urls.binance_rest + "/api/v3/aggTrades?symbol=DOGEUSDT"
            _, rows, _ = await get(http, f"{url}&fromId={frames[0]['a']}")
            return frames, rows

    frames, rows = run_scenario(main)
    assert rows[: len(frames)] == [
        {key: frame[key] for key in ("a", "p", "q", "f", "l", "T", "m", "M")} for frame in frames
    ]


def test_binance_exchange_info_and_errors(tmp_path: Path) -> None:
    """The simulated Binance exchange info describes each symbol as Binance does, reports the
    request weight used, and errors carry Binance's codes."""

    async def main() -> list[tuple[int, Any, Any]]:
        async with Simulator(config(tmp_path)) as sim, aiohttp.ClientSession() as http:
            base = sim.urls.binance_rest + "/api/v3/"
            return [
                await get(http, base + "exchangeInfo?symbol=BTCUSDT"),
                await get(http, base + "trades?symbol=FOOBAR"),
                await get(http, base + "trades"),
            ]

    (status, info, headers), unknown, missing = run_scenario(main)
    assert status == 200 and int(headers["X-MBX-USED-WEIGHT-1M"]) > 0
    (symbol,) = info["symbols"]
    assert (symbol["symbol"], symbol["status"], symbol["baseAsset"], symbol["quoteAsset"]) == (
        "BTCUSDT",
        "TRADING",
        "BTC",
        "USDT",
    )
    filters = {f["filterType"]: f for f in symbol["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert unknown[:2] == (400, {"code": -1121, "msg": "Invalid symbol."})
    assert missing[0] == 400 and missing[1]["code"] == -1102


def test_binance_request_weight_limit_answers_429(tmp_path: Path) -> None:
    """The simulated Binance answers 429 with Retry-After once the request weight limit is spent."""

    async def main() -> list[tuple[int, Any, Any]]:
        async with (
            Simulator(config(tmp_path, binance_weight_limit=60)) as sim,
            aiohttp.ClientSession() as http,
        ):
            url = sim.urls.binance_rest + "/api/v3/trades?symbol=BTCUSDT"
            return [await get(http, url) for _ in range(3)]

    first, second, third = run_scenario(main)
    assert first[0] == second[0] == 200
    assert third[0] == 429 and third[1]["code"] == -1003 and int(third[2]["Retry-After"]) >= 1


def test_kraken_trades_page_by_since_and_match_the_v2_stream(tmp_path: Path) -> None:
    """The simulated Kraken REST history pages by since with no overlap and no hole, and holds the
    trades the v2 stream sent."""

    async def main() -> tuple[list[Any], Any, Any]:
        async with Simulator(config(tmp_path)) as sim, aiohttp.ClientSession() as http:
            request = json.dumps(
                {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}}
            )
            frames = await stream(sim.urls.kraken_v2, request, 0.8)
            base = sim.urls.kraken_rest + "/0/public/Trades?pair=XBTUSD&count=5"
            _, page1, _ = await get(http, base + "&since=0")
            _, page2, _ = await get(http, base + "&since=" + page1["result"]["last"])
            return frames, page1, page2

    frames, page1, page2 = run_scenario(main)
    assert page1["error"] == [] and set(page1["result"]) == {"XXBTZUSD", "last"}
    rows = page1["result"]["XXBTZUSD"] + page2["result"]["XXBTZUSD"]
    ids = [row[6] for row in rows]
    assert ids == list(range(ids[0], ids[0] + 10))  # since is exclusive: no overlap, no hole
    assert int(page2["result"]["last"]) > int(page1["result"]["last"])
    streamed = {t["trade_id"]: t for f in frames if f.get("channel") == "trade" for t in f["data"]}
    for price, volume, _when, side, order, misc, trade_id in rows:
        if trade_id in streamed:
            trade = streamed[trade_id]
            assert Decimal(price) == Decimal(str(trade["price"]))
            assert Decimal(volume) == Decimal(str(trade["qty"]))
            assert (side, order, misc) == (trade["side"][0], trade["ord_type"][0], "")
    assert any(row[6] in streamed for row in rows)


def test_kraken_asset_pairs_and_errors(tmp_path: Path) -> None:
    """The simulated Kraken asset pairs describe each pair as Kraken does, and unknown pairs and too
    many requests get Kraken's errors."""

    async def main() -> list[Any]:
        async with (
            Simulator(config(tmp_path, kraken_rest_limit=3)) as sim,
            aiohttp.ClientSession() as http,
        ):
            base = sim.urls.kraken_rest + "/0/public/"
            return [
                (await get(http, base + "AssetPairs?pair=XBTUSD"))[1],
                (await get(http, base + "Trades?pair=XBTFOO"))[1],
                (await get(http, base + "AssetPairs"))[1],
                (await get(http, base + "AssetPairs"))[1],
            ]

    pairs, unknown, _, limited = run_scenario(main)
    entry = pairs["result"]["XXBTZUSD"]
    assert (entry["altname"], entry["wsname"], entry["base"], entry["quote"]) == (
        "XBTUSD",
        "XBT/USD",
        "XXBT",
        "ZUSD",
    )
    assert (entry["pair_decimals"], entry["lot_decimals"], entry["status"]) == (1, 8, "online")
    assert unknown == {"error": ["EQuery:Unknown asset pair"]}
    assert limited == {"error": ["EGeneral:Too many requests"]}


def test_kraken_assets_list_every_asset_of_the_listed_pairs(tmp_path: Path) -> None:
    """Clients load Assets before AssetPairs: every base and quote is there, by REST id."""

    async def main() -> list[Any]:
        async with (
            Simulator(config(tmp_path, kraken_symbols=("XBT/USD", "XBT/EUR", "ETH/USD"))) as sim,
            aiohttp.ClientSession() as http,
        ):
            base = sim.urls.kraken_rest + "/0/public/"
            return [
                (await get(http, base + "Assets"))[1],
                (await get(http, base + "Assets?asset=XBT"))[1],
                (await get(http, base + "Assets?asset=NOPE"))[1],
            ]

    every, one, unknown = run_scenario(main)
    assert set(every["result"]) == {"XXBT", "ZUSD", "ZEUR", "XETH"}
    assert every["result"]["XXBT"]["altname"] == "XBT"
    assert all(
        a["aclass"] == "currency" and a["status"] == "enabled" for a in every["result"].values()
    )
    assert list(one["result"]) == ["XXBT"]
    assert unknown == {"error": ["EQuery:Unknown asset"]}
