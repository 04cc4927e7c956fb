"""Venue markets: the configured rate exactly, trade ids the venue loses on its streams, and ids
that keep rising across restarts."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from k2.exchanges import VENUES
from k2.exchanges.binance import EXCHANGE as BINANCE
from k2.exchanges.binance.normalise import split_symbol
from k2.exchanges.kraken import EXCHANGE as KRAKEN
from k2.simulator import markets
from k2.simulator.instruments import catalog
from k2.simulator.market import SymbolGenerator
from k2.simulator.markets import build_markets
from k2.simulator.settings import SimulatorConfig
from k2.simulator.venue import SyntheticSource, VenueMarket
from k2.simulator.venues.binance.instruments import BINANCE_INSTRUMENTS
from k2.simulator.venues.kraken.instruments import KRAKEN_INSTRUMENTS

NOW = 1_750_000_000_000_000


def _market(exchange: str, instruments: tuple, rate: int, limit: int | None = None) -> VenueMarket:  # type: ignore[type-arg]
    market = VenueMarket(exchange, instruments, retention=100_000)
    generators = [SymbolGenerator(inst, 1) for inst in instruments]
    market.sources.append(SyntheticSource(generators, rate, len(instruments), limit))
    return market


def test_the_rate_is_exact_over_time_and_spread_over_symbols() -> None:
    market = _market(KRAKEN, KRAKEN_INSTRUMENTS[:2], rate=1000)
    for step in range(1, 401):
        market.advance(NOW + step * 2_500, 2_500)  # 400 steps of 2.5 ms = 1 s
    assert [h.trade_end for h in market.histories.values()] == [500, 500]


def test_a_symbol_stops_after_its_trade_limit() -> None:
    market = _market(KRAKEN, KRAKEN_INSTRUMENTS[:1], rate=1000, limit=30)
    market.advance(NOW, 1_000_000)
    assert market.histories["XBT/USD"].trade_end == 30


def test_lost_ids_are_every_nth_trade_and_stay_in_the_history() -> None:
    market = _market(KRAKEN, KRAKEN_INSTRUMENTS[:1], rate=1000)
    market.set_loss(10)
    market.advance(NOW, 100_000)
    trades = market.histories["XBT/USD"].trades
    assert len(trades) == 100
    assert [t.trade_id for t in trades if t.lost] == [t.trade_id for t in trades[9::10]]
    assert all(not t.lost for t in market.histories["XBT/USD"].recent_visible(50))


def test_a_binance_aggregate_holding_a_lost_trade_is_lost_too() -> None:
    market = _market(BINANCE, BINANCE_INSTRUMENTS[:1], rate=1000)
    market.set_loss(3, ["BTCUSDT"])
    market.advance(NOW, 500_000)
    history = market.histories["BTCUSDT"]
    lost = {t.trade_id for t in history.trades if t.lost}
    for agg in history.aggs:
        members = set(range(agg.first_id, agg.last_id + 1))
        assert agg.lost == bool(members & lost)


def test_new_trades_wake_the_connections() -> None:
    market = _market(KRAKEN, KRAKEN_INSTRUMENTS[:1], rate=1000)
    waiter = market.pulse
    assert market.advance(NOW, 10_000) == 10
    assert not waiter.is_set()  # a pulse: set and cleared, waking whoever was waiting


def _one_symbol_each(**changes: Any) -> SimulatorConfig:
    """Every exchange lists its most traded symbol (XBT/USD, BTCUSDT, ...)."""
    listed = {f"{name}_symbols": (catalog(name)[0].symbol,) for name in VENUES}
    return SimulatorConfig(**listed, **changes)


def _first_ids(config: SimulatorConfig) -> list[int]:
    markets = build_markets(config)
    ids = []
    for market in markets.values():
        market.advance(NOW, 1_000_000)
        ids += [history.trades[0].trade_id for history in market.histories.values()]
    return ids


def test_ids_start_from_the_clock_so_they_keep_rising_across_restarts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _one_symbol_each(rate=400)
    clock_ns = [NOW * 1000]
    monkeypatch.setattr(markets, "time", SimpleNamespace(time_ns=lambda: clock_ns[0]))
    first_run = _first_ids(config)
    assert all(trade_id > NOW for trade_id in first_run)
    clock_ns[0] += 10_000_000  # 10,000 µs later: far more than the 200 ids per symbol of a run
    second_run = _first_ids(config)
    offsets = [b - a for a, b in zip(first_run, second_run, strict=True)]
    assert all(offset >= 10_000 for offset in offsets), offsets
    assert offsets == [10_000] * len(offsets)  # the ids move on by exactly the time between runs


def test_a_fixed_id_base_gives_the_same_ids_every_run() -> None:
    config = _one_symbol_each(rate=400, id_base=5_000_000)
    first_run = _first_ids(config)
    assert first_run == _first_ids(config)
    assert all(5_000_000 < trade_id < 905_000_000 for trade_id in first_run)


def test_the_universe_is_venue_sized_and_the_rate_goes_mostly_to_the_top_symbols() -> None:
    """The default listing is the whole universe; a skewed rate still adds up exactly."""
    markets = build_markets(SimulatorConfig(rate=10_000, id_base=1))
    assert len(markets[KRAKEN].instruments) == 700
    assert len(markets[BINANCE].instruments) == 2000
    for step in range(1, 11):
        for market in markets.values():
            market.advance(NOW + step * 100_000, 100_000)  # 1 s in all
    made = {
        exchange: sorted((h.trade_end for h in market.histories.values()), reverse=True)
        for exchange, market in markets.items()
    }
    total = sum(sum(counts) for counts in made.values())
    # each symbol's integer carry holds back less than one trade
    assert 10_000 - 2_700 < total <= 10_000
    assert made[BINANCE][0] > 10 * made[BINANCE][500]
    assert markets[BINANCE].histories["BTCUSDT"].trade_end == made[BINANCE][0]


def test_every_binance_symbol_splits_into_its_listed_assets() -> None:
    """Silver splits Binance symbols by known quote assets: every listed one must split."""
    for inst in catalog(BINANCE):
        assert split_symbol(inst.symbol) == (inst.base, inst.quote)
    kraken = catalog(KRAKEN)
    assert len({inst.symbol for inst in kraken}) == len({inst.v2_symbol for inst in kraken})
