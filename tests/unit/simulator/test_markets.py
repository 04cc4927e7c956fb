"""The simulator's markets built from its settings: ids from the clock (or a fixed base), and the
whole universe listed with the rate going mostly to the top symbols."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from k2.exchanges import EXCHANGES
from k2.exchanges.binance import EXCHANGE as BINANCE
from k2.exchanges.kraken import EXCHANGE as KRAKEN
from k2.simulator import markets
from k2.simulator.instruments import catalog
from k2.simulator.markets import build_markets
from k2.simulator.settings import SimulatorConfig

NOW = 1_750_000_000_000_000


def _one_symbol_each(**changes: Any) -> SimulatorConfig:
    """Every exchange lists its most traded symbol (XBT/USD, BTCUSDT, ...)."""
    listed = {f"{name}_symbols": (catalog(name)[0].symbol,) for name in EXCHANGES}
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
    """A simulator's trade ids start from the clock, so a restarted simulator's ids move on by the
    time between runs and never repeat."""
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
    """A fixed id base makes the same trade ids every run."""
    config = _one_symbol_each(rate=400, id_base=5_000_000)
    first_run = _first_ids(config)
    assert first_run == _first_ids(config)
    assert all(5_000_000 < trade_id < 905_000_000 for trade_id in first_run)


def test_the_universe_is_exchange_sized_and_the_rate_goes_mostly_to_the_top_symbols() -> None:
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
