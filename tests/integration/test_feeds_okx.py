"""The OKX feed client against the local simulator over real sockets: every trade once and in
order, a disconnect reported as exactly the skipped ids, a silent stall and a quiet instrument
handled as OKX's keep-alive rules say, refusals in one line, and every instrument spread over
connections within OKX's limits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from k2.errors import SubscriptionRejectedError, UnknownSymbolError
from k2.exchanges.base import ControlKind, RawTrade
from k2.exchanges.okx import wire
from k2.exchanges.okx.client import OkxFeedClient, OkxFeedOptions
from k2.simulator.faults import FaultRule
from k2.simulator.instruments import catalog
from k2.simulator.server import Simulator
from tests.simulated import simulator_configs

from .test_feeds_vs_simulator import Feed, ids_of, ledger_by_symbol, run

pytestmark = pytest.mark.timeout(120)

SYMBOLS = ("BTC-USDT", "ETH-USDT")


sim_config = simulator_configs(rate=400, okx_symbols=SYMBOLS)


def client(sim: Simulator, symbols: tuple[str, ...] = SYMBOLS, **changes: Any) -> OkxFeedClient:
    urls = sim.urls
    return OkxFeedClient(OkxFeedOptions(symbols, urls.okx_business, urls.okx_rest, **changes))


def test_every_emitted_trade_arrives_once_in_per_symbol_order(tmp_path: Path) -> None:
    """What the simulator sent (its ledger) is what the client delivered, field for field
    (trades made before the subscription are not sent: OKX sends no snapshot)."""
    per_symbol = 200

    async def scenario() -> None:
        config = sim_config(tmp_path, trades_per_symbol=per_symbol)
        async with Simulator(config) as sim, Feed(client(sim)) as feed:
            histories = sim.market("okx").histories

            def done(f: Feed) -> bool:
                generated = all(h.trade_end >= per_symbol for h in histories.values())
                sent = sum(map(len, ledger_by_symbol(sim.ledger_path).values()))
                return generated and sent == sum(map(len, f.trades().values()))

            await feed.until(done)
            await asyncio.sleep(0.3)  # nothing more may come
            sent = ledger_by_symbol(sim.ledger_path)
            for symbol, trades in feed.trades().items():
                assert len(trades) == len(sent[symbol]) > 0
                assert [{**e.fields, "channel": "trades-all"} for e in sent[symbol]] == [
                    dict(t.fields) for t in trades
                ]
                assert ids_of(trades) == sorted(ids_of(trades))
            assert set(feed.trades()) == set(SYMBOLS) and feed.gaps() == []

    run(scenario)


def test_a_forced_disconnect_reconnects_and_reports_exactly_the_skipped_ids(
    tmp_path: Path,
) -> None:
    """trades-all sends no snapshot: what traded while the client was away is a gap of exactly
    those ids, detected by the first id after the reconnect."""
    drop = FaultRule(protocol="okx", drop_after_trades=60, connections=2)

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path, faults=(drop,))) as sim:
            async with Feed(client(sim, backoff_base_s=0.2)) as feed:
                await feed.until(
                    lambda f: len(f.controls(ControlKind.CONNECTED)) >= 3
                    and sum(map(len, f.trades().values())) > 250
                )
            sent = {(e.symbol, e.trade_id) for es in ledger_by_symbol(sim.ledger_path).values()
                    for e in es}  # fmt: skip
        gaps = feed.gaps()
        assert gaps and {gap.detected_by for gap in gaps} == {"reconnect"}
        for symbol, trades in feed.trades().items():
            ids = ids_of(trades)
            assert ids == sorted(set(ids)) and all((symbol, i) in sent for i in ids)
            missing = {i for g in gaps if g.native_symbol == symbol
                       for i in range(g.first_missing, g.last_missing + 1)}  # fmt: skip
            assert set(ids) | missing == set(range(ids[0], ids[-1] + 1))
            assert not any((symbol, i) in sent for i in missing)

    run(scenario)


def test_a_silent_stall_reconnects_within_the_liveness_deadline(tmp_path: Path) -> None:
    """An OKX connection that falls silent is given up within the liveness deadline, said in the
    reason, and trades flow again on a new one."""
    stall = FaultRule(protocol="okx", stall="silent", stall_after_trades=40, connections=1)

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path, faults=(stall,))) as sim:
            options = {"liveness_timeout_s": 1.5, "ping_idle_s": 0.5}
            async with Feed(client(sim, **options)) as feed:
                await feed.until(lambda f: len(f.controls(ControlKind.CONNECTED)) >= 2)
                (lost_at, lost), *_ = feed.controls(ControlKind.DISCONNECTED)
                assert "within 1.5 s" in str(lost.detail["reason"])
                await feed.until(
                    lambda f: any(t > lost_at for t, e in f.events if isinstance(e, RawTrade))
                )

    run(scenario)


def test_text_pings_keep_a_quiet_instrument_past_the_idle_cut(tmp_path: Path) -> None:
    """Nothing trades, yet the connection lives past OKX's idle cut: the client pings, the
    exchange answers pong, and nothing is reconnected."""

    async def scenario() -> None:
        config = sim_config(tmp_path, rate=0, okx_idle_s=1.0, ledger_path=None)
        async with Simulator(config) as sim:
            options = {"ping_idle_s": 0.4, "liveness_timeout_s": 0.9}
            async with Feed(client(sim, **options)) as feed:
                await feed.until(lambda f: bool(f.controls(ControlKind.CONNECTED)))
                await asyncio.sleep(3.0)
                assert feed.controls(ControlKind.DISCONNECTED) == []
                assert len(feed.controls(ControlKind.PONG)) >= 3

    run(scenario)


def test_an_unknown_instrument_is_refused_before_connecting(tmp_path: Path) -> None:
    """An instrument OKX does not list is refused by name before any connection is opened."""

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path)) as sim:
            with pytest.raises(UnknownSymbolError, match="NOPE-USDT"):
                async for _ in client(sim, ("BTC-USDT", "NOPE-USDT")).events():
                    pass
            assert sim.sessions() == []

    run(scenario)


def test_an_instrument_the_exchange_refuses_fails_with_one_line_naming_it(tmp_path: Path) -> None:
    """The exchange's error event 60018 for one instrument: the feed stops with one line."""
    reject = FaultRule(protocol="okx", reject_symbols=("ETH-USDT",))

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path, faults=(reject,))) as sim:
            with pytest.raises(SubscriptionRejectedError) as caught:
                async for _ in client(sim).events():
                    pass
        message = str(caught.value)
        assert "\n" not in message and "ETH-USDT" in message and "60018" in message

    run(scenario)


def test_every_instrument_is_spread_over_connections_within_okx_limits(tmp_path: Path) -> None:
    """All 700 instruments: connections of at most 300, each subscribed in requests under
    64 KB, connection attempts and requests together no more than 3 in any second."""
    listed = tuple(inst.symbol for inst in catalog("okx"))

    async def scenario() -> tuple[list[int], list[Any]]:
        config = sim_config(tmp_path, okx_symbols=listed, rate=700, ledger_path=None)
        async with Simulator(config) as sim:
            feed_client = client(sim, ("*",))
            async with Feed(feed_client) as feed:
                await feed.until(lambda f: len(f.controls(ControlKind.CONNECTED)) == 3, 60)
                sessions = sim.sessions("okx")
                sizes = sorted(len(session.describe()["subscriptions"]) for session in sessions)
                opened = [session.opened for session in sessions]
            return sizes, opened

    sizes, opened = asyncio.run(scenario())
    assert sizes == [100, 300, 300]
    assert max(opened) - min(opened) >= 0.9  # three connects at 2 a second after the first
    names = [f"A{n:05d}-USDT" for n in range(300)]
    request = wire.request("subscribe", wire.ALL_TRADES, names, "1")
    assert len(json.dumps(request)) < wire.MAX_REQUEST_BYTES
