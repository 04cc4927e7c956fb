"""Feed clients against the local simulator over real sockets: every trade arrives once and in
order, disconnects and stalls are survived with exact gaps, and refusals are one clear line."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from k2.errors import SubscriptionRejectedError, UnknownSymbolError
from k2.exchanges.base import (
    Control,
    ControlKind,
    FeedEvent,
    Gap,
    Malformed,
    RawTrade,
    Silence,
)
from k2.exchanges.binance.client import BinanceFeedClient, BinanceFeedOptions
from k2.exchanges.binance.wire import StreamKind
from k2.exchanges.kraken.client import KrakenFeedClient, KrakenFeedOptions
from k2.simulator.faults import FaultRule
from k2.simulator.instruments import catalog
from k2.simulator.ledger import LedgerEntry, delivered, read_ledger
from k2.simulator.server import Simulator
from tests.polling import wait_until_async
from tests.simulated import simulator_configs

pytestmark = pytest.mark.timeout(90)

Client = KrakenFeedClient | BinanceFeedClient
KRAKEN_PAIRS = ("XBT/USD", "ETH/USD")
BINANCE_SYMBOLS = ("BTCUSDT", "ETHUSDT")


sim_config = simulator_configs(
    rate=200, kraken_symbols=KRAKEN_PAIRS, binance_symbols=BINANCE_SYMBOLS
)


def make_client(sim: Simulator, protocol: str, **changes: Any) -> Client:
    urls = sim.urls
    if protocol == "kraken-v1":
        return KrakenFeedClient(
            KrakenFeedOptions(
                KRAKEN_PAIRS, "kraken-v1", urls.kraken_v1, urls.kraken_rest, **changes
            )
        )
    if protocol == "kraken-v2":
        return KrakenFeedClient(
            KrakenFeedOptions(
                ("BTC/USD", "ETH/USD"), "kraken-v2", urls.kraken_v2, urls.kraken_rest, **changes
            )
        )
    stream: StreamKind = "aggTrade" if protocol == "binance-aggtrade" else "trade"
    options = BinanceFeedOptions(
        BINANCE_SYMBOLS, stream, ws_url=urls.binance_ws, rest_url=urls.binance_rest, **changes
    )
    return BinanceFeedClient(options)


class Feed:
    """A client's event stream collected in the background, with polling helpers."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.events: list[tuple[float, FeedEvent]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Feed:
        self._task = asyncio.create_task(self._consume())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
        assert self._task is not None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 10)

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        async for event in self.client.events():
            self.events.append((loop.time(), event))

    async def until(
        self, done: Callable[[Feed], bool], timeout_s: float = 30.0, what: str = "the feed"
    ) -> None:
        """Wait until ``done`` holds for the feed; fail at once when the client ended."""

        def check() -> bool:
            if done(self):
                return True
            assert self._task is not None
            if self._task.done():
                self._task.result()  # the client's error, if it ended with one
                raise AssertionError("the feed ended")
            return False

        await wait_until_async(
            check, timeout_s, what, every_s=0.02, context=lambda: f"stats={self.client.stats}"
        )

    def trades(self) -> dict[str, list[RawTrade]]:
        by_symbol: dict[str, list[RawTrade]] = defaultdict(list)
        for _, event in self.events:
            if isinstance(event, RawTrade):
                by_symbol[event.native_symbol].append(event)
        return by_symbol

    def gaps(self) -> list[Gap]:
        return [event for _, event in self.events if isinstance(event, Gap)]

    def controls(self, kind: ControlKind) -> list[tuple[float, Control]]:
        return [(t, e) for t, e in self.events if isinstance(e, Control) and e.kind == kind]


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def ids_of(trades: list[RawTrade]) -> list[int]:
    ids = [trade.trade_key for trade in trades]
    assert all(isinstance(i, int) for i in ids)
    return [i for i in ids if i is not None]


def fault_protocol_of(protocol: str) -> str:
    """The simulator's fault protocol name: ``binance`` covers both Binance stream kinds."""
    return "binance" if protocol.startswith("binance") else protocol


def ledger_by_symbol(path: Path | None) -> dict[str, list[LedgerEntry]]:
    assert path is not None
    by_symbol: dict[str, list[LedgerEntry]] = defaultdict(list)
    for entry in delivered(read_ledger(path)):
        by_symbol[entry.symbol].append(entry)
    return by_symbol


@pytest.mark.parametrize(
    "protocol", ["kraken-v1", "kraken-v2", "binance-trade", "binance-aggtrade"]
)
def test_every_emitted_trade_arrives_once_in_per_symbol_order(
    tmp_path: Path, protocol: str
) -> None:
    """Every trade the exchange sends reaches the feed client once, with every field as sent, in
    per-symbol order and with no gap reported, on each Kraken and Binance protocol."""
    per_symbol = 150  # trades generated per symbol (aggTrade frames may aggregate several)

    async def scenario() -> None:
        config = sim_config(tmp_path, rate=400, trades_per_symbol=per_symbol)
        async with Simulator(config) as sim, Feed(make_client(sim, protocol)) as feed:
            history = sim.market("kraken" if protocol.startswith("kraken") else "binance")

            def all_emitted_and_received(f: Feed) -> bool:
                generated = all(h.trade_end >= per_symbol for h in history.histories.values())
                sent = ledger_by_symbol(sim.ledger_path)
                received = f.trades()
                return generated and sum(map(len, sent.values())) == sum(
                    map(len, received.values())
                )

            await feed.until(all_emitted_and_received)
            await asyncio.sleep(0.3)  # nothing more may come
            received = feed.trades()
            sent = ledger_by_symbol(sim.ledger_path)
            assert set(received) == set(sent) and len(sent) == 2
            for symbol, trades in received.items():
                assert len(trades) == len(sent[symbol]) > 0
                assert [dict(t.fields) for t in trades] == [dict(e.fields) for e in sent[symbol]]
            assert feed.gaps() == []

    run(scenario)


@pytest.mark.parametrize("protocol", ["binance-trade", "kraken-v2"])
def test_a_forced_disconnect_reconnects_and_reports_exactly_the_skipped_ids(
    tmp_path: Path, protocol: str
) -> None:
    """After forced disconnects the client reconnects, delivers each id once in order, and reports
    as reconnect gaps exactly the ids it never received."""
    drop = FaultRule(protocol=fault_protocol_of(protocol), drop_after_trades=60, connections=2)

    async def scenario() -> None:
        config = sim_config(tmp_path, rate=400, snapshot_size=3, faults=(drop,))
        async with Simulator(config) as sim:
            client = make_client(sim, protocol, backoff_base_s=0.2)
            async with Feed(client) as feed:
                await feed.until(
                    lambda f: len(f.controls(ControlKind.CONNECTED)) >= 3
                    and sum(map(len, f.trades().values())) > 250
                )
            received = {symbol: ids_of(trades) for symbol, trades in feed.trades().items()}
            gaps = feed.gaps()
            assert gaps, "two reconnects at 200 trades/s per symbol must skip some ids"
            assert {gap.detected_by for gap in gaps} == {"reconnect"}
            sent_ids = {
                (e.symbol, e.trade_id)
                for es in ledger_by_symbol(sim.ledger_path).values()
                for e in es
            }
        for symbol, ids in received.items():
            assert ids == sorted(set(ids)), "each id once, in order"
            assert all((symbol, i) in sent_ids for i in ids)
            missing = {
                i
                for g in gaps
                if g.native_symbol == symbol
                for i in range(g.first_missing, g.last_missing + 1)
            }
            assert not missing & set(ids)
            span = set(range(ids[0], ids[-1] + 1))
            assert set(ids) | missing == span
            assert not any((symbol, i) in sent_ids for i in missing), "gaps are never-sent ids"

    run(scenario)


@pytest.mark.parametrize("protocol", ["kraken-v2", "binance-trade"])
def test_a_silent_stall_reconnects_within_the_liveness_deadline(
    tmp_path: Path, protocol: str
) -> None:
    """A connection that falls silent is given up within the liveness deadline, said in the
    disconnect reason, and trades flow again on a new one."""
    liveness = 1.5
    stall = FaultRule(
        protocol=fault_protocol_of(protocol), stall="silent", stall_after_trades=40, connections=1
    )

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path, faults=(stall,))) as sim:
            client = make_client(sim, protocol, liveness_timeout_s=liveness)
            async with Feed(client) as feed:
                await feed.until(lambda f: len(f.controls(ControlKind.CONNECTED)) >= 2)
                (lost_at, lost), *_ = feed.controls(ControlKind.DISCONNECTED)
                last_frame = max(
                    t for t, e in feed.events if isinstance(e, RawTrade) and t < lost_at
                )
                assert "within 1.5 s" in str(lost.detail["reason"])
                assert liveness * 0.9 <= lost_at - last_frame <= liveness + 2.0
                await feed.until(
                    lambda f: any(t > lost_at for t, e in f.events if isinstance(e, RawTrade))
                )

    run(scenario)


@pytest.mark.parametrize(
    ("protocol", "rejected"), [("kraken-v2", "ETH/USD"), ("kraken-v1", "ETH/USD")]
)
def test_a_rejected_symbol_fails_with_one_line_naming_it(
    tmp_path: Path, protocol: str, rejected: str
) -> None:
    """A pair the exchange refuses stops the client with one line naming the pair and the exchange's
    reason."""
    reject = FaultRule(protocol=protocol, reject_symbols=(rejected,))

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path, faults=(reject,))) as sim:
            client = make_client(sim, protocol)
            with pytest.raises(SubscriptionRejectedError) as caught:
                async for _ in client.events():
                    pass
        message = str(caught.value)
        assert "\n" not in message
        assert rejected in message
        assert f"Currency pair not supported {rejected}" in message

    run(scenario)


@pytest.mark.parametrize("protocol", ["kraken-v2", "binance-trade"])
def test_an_unknown_symbol_is_refused_before_connecting(tmp_path: Path, protocol: str) -> None:
    """A symbol the exchange does not list is refused by name before any connection is opened."""

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path)) as sim:
            urls = sim.urls
            client: Client
            if protocol == "kraken-v2":
                client = KrakenFeedClient(
                    KrakenFeedOptions(
                        ("BTC/USD", "NOPE/USD"), ws_url=urls.kraken_v2, rest_url=urls.kraken_rest
                    )
                )
            else:
                client = BinanceFeedClient(
                    BinanceFeedOptions(
                        ("BTCUSDT", "NOPEUSDT"), ws_url=urls.binance_ws, rest_url=urls.binance_rest
                    )
                )
            with pytest.raises(UnknownSymbolError, match="NOPE"):
                async for _ in client.events():
                    pass
            assert sim.sessions() == []

    run(scenario)


def test_binance_rolls_over_before_max_age_and_on_server_shutdown_without_gaps(
    tmp_path: Path,
) -> None:
    """The Binance client opens a new connection before the old one ages out or the server shuts it
    down, overlapping them so no trade is missed or lost."""

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path, rate=400)) as sim:
            client = make_client(sim, "binance-trade", max_connection_age_s=1.5, overlap_s=0.4)
            async with Feed(client) as feed:
                await feed.until(lambda f: len(f.controls(ControlKind.CONNECTED)) >= 2)
                client.options = BinanceFeedOptions(  # no more age-based rollovers
                    BINANCE_SYMBOLS, ws_url=sim.urls.binance_ws, overlap_s=0.4
                )
                sim.shutdown("binance", grace_s=2.0)
                await feed.until(lambda f: len(f.controls(ControlKind.CONNECTED)) >= 3)
                connected = feed.controls(ControlKind.CONNECTED)[-1][0]
                await feed.until(lambda f: any(t > connected + 0.5 for t, _ in f.events))
            assert feed.controls(ControlKind.DISCONNECTED) == []
            assert feed.gaps() == []
            assert client.stats.duplicates_dropped > 0, "the connections overlapped"
            for trades in feed.trades().values():
                ids = ids_of(trades)
                assert ids == list(range(ids[0], ids[0] + len(ids)))

    run(scenario)


def test_garbled_frames_are_malformed_events_and_the_connection_keeps_going(
    tmp_path: Path,
) -> None:
    """Garbled frames become malformed events with their text and the connection keeps going, the
    lost trades reported as gaps."""
    garble = FaultRule(protocol="binance", garble_every=10)

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path, faults=(garble,))) as sim:
            async with Feed(make_client(sim, "binance-trade")) as feed:
                await feed.until(lambda f: sum(isinstance(e, Malformed) for _, e in f.events) >= 3)
            garbled = [e for e in read_ledger(sim.ledger_path) if e.garbled]  # type: ignore[arg-type]
        malformed = [e for _, e in feed.events if isinstance(e, Malformed)]
        assert all(m.raw and m.error for m in malformed)
        assert feed.controls(ControlKind.DISCONNECTED) == []
        # a garbled Binance frame loses its one trade: the id sequence reports it
        lost = {(g.native_symbol, g.first_missing) for g in feed.gaps()}
        assert lost <= {(e.symbol, e.trade_id) for e in garbled}
        assert len(lost) >= len(malformed) - 2  # the last ones may not be followed by a trade yet

    run(scenario)


@pytest.mark.parametrize("protocol", ["kraken-v2", "binance-trade"])
def test_trade_silence_is_a_warning_and_a_callback_not_a_reconnect(
    tmp_path: Path, protocol: str
) -> None:
    """Symbols that stop trading while the connection is alive are each reported once as silent, and
    the connection is kept."""
    fault_protocol = fault_protocol_of(protocol)
    stall = FaultRule(protocol=fault_protocol, stall="heartbeats")
    silences: list[Silence] = []

    async def scenario() -> None:
        config = sim_config(tmp_path, faults=(stall,), binance_ping_s=0.3)
        async with Simulator(config) as sim:
            urls = sim.urls
            client: Client
            if fault_protocol == "binance":
                options = BinanceFeedOptions(
                    BINANCE_SYMBOLS,
                    ws_url=urls.binance_ws,
                    rest_url=urls.binance_rest,
                    liveness_timeout_s=2.0,
                    first_trade_timeout_s=0.5,
                )
                client = BinanceFeedClient(options, on_silence=silences.append)
            else:
                client = KrakenFeedClient(
                    KrakenFeedOptions(
                        ("BTC/USD", "ETH/USD"),
                        ws_url=urls.kraken_v2,
                        rest_url=urls.kraken_rest,
                        liveness_timeout_s=2.0,
                        silence_warning_s=0.5,
                    ),
                    on_silence=silences.append,
                )
            async with Feed(client) as feed:
                await feed.until(lambda f: len(silences) >= 2)
                await asyncio.sleep(2.5)  # longer than the liveness deadline: the link stays up
            assert len({s.key for s in silences}) == 2
            assert not any(s.ever_seen for s in silences)
            assert client.stats.reconnects == 0
            assert feed.controls(ControlKind.DISCONNECTED) == []

    run(scenario)


def test_kraken_exceeded_msg_rate_is_waited_out_and_every_pair_confirmed(tmp_path: Path) -> None:
    """An exchange that answers ``Exceeded msg rate``: the client re-sends what is unconfirmed."""
    pairs = tuple(inst.symbol for inst in catalog("kraken")[:160])
    v2_names = tuple(inst.v2_symbol for inst in catalog("kraken")[:160])

    async def scenario() -> None:
        config = sim_config(tmp_path, kraken_symbols=pairs, kraken_msg_rate=1)
        async with Simulator(config) as sim:
            options = KrakenFeedOptions(
                v2_names, ws_url=sim.urls.kraken_v2, rest_url=sim.urls.kraken_rest
            )
            async with Feed(KrakenFeedClient(options)) as feed:
                await feed.until(lambda f: bool(f.controls(ControlKind.CONNECTED)), 60)
                errors = [e for _, e in feed.controls(ControlKind.ERROR)]
            assert any("Exceeded msg rate" in str(e.detail.get("message")) for e in errors)
            assert feed.controls(ControlKind.DISCONNECTED) == []

    run(scenario)


@pytest.mark.parametrize("protocol", ["kraken-v2", "binance-trade"])
def test_a_configured_symbol_the_exchange_delists_is_dropped_and_taken_up_again(
    tmp_path: Path, protocol: str
) -> None:
    """Explicit symbols: a refresh after one leaves the exchange's listings drops it (no warning,
    no error), and one after it is listed again subscribes to it again."""
    market = "binance" if protocol.startswith("binance") else "kraken"
    symbol = "ETHUSDT" if market == "binance" else "ETH/USD"  # the same name in v1 and v2

    async def scenario() -> None:
        async with Simulator(sim_config(tmp_path, ledger_path=None)) as sim:
            client = make_client(sim, protocol)
            async with Feed(client) as feed:
                await feed.until(lambda f: bool(f.controls(ControlKind.CONNECTED)))
                sim.delist_symbol(market, symbol)
                with capture_logs() as logs:
                    assert await client.refresh_listings() == ([], [symbol])
                assert symbol not in client.natives
                assert not [e for e in logs if e["log_level"] in ("warning", "error")]
                sim.list_symbol(market, symbol)
                assert await client.refresh_listings() == ([symbol], [])
                assert symbol in client.natives

    run(scenario)
