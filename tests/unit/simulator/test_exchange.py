"""Exchange markets: the configured rate exactly, a symbol's trade limit, and the trade ids the
exchange loses on its streams."""

from __future__ import annotations

from k2.exchanges.binance import EXCHANGE as BINANCE
from k2.exchanges.kraken import EXCHANGE as KRAKEN
from k2.simulator.exchange import ExchangeMarket, SyntheticSource
from k2.simulator.exchanges.binance.instruments import BINANCE_INSTRUMENTS
from k2.simulator.exchanges.kraken.instruments import KRAKEN_INSTRUMENTS
from k2.simulator.market import SymbolGenerator

NOW = 1_750_000_000_000_000


def _market(
    exchange: str, instruments: tuple, rate: int, limit: int | None = None
) -> ExchangeMarket:  # type: ignore[type-arg]
    market = ExchangeMarket(exchange, instruments, retention=100_000)
    generators = [SymbolGenerator(inst, 1) for inst in instruments]
    market.sources.append(SyntheticSource(generators, rate, len(instruments), limit))
    return market


def test_the_rate_is_exact_over_time_and_spread_over_symbols() -> None:
    """An exchange makes exactly its configured rate of trades over time, shared out over its
    symbols."""
    market = _market(KRAKEN, KRAKEN_INSTRUMENTS[:2], rate=1000)
    for step in range(1, 401):
        market.advance(NOW + step * 2_500, 2_500)  # 400 steps of 2.5 ms = 1 s
    assert [h.trade_end for h in market.histories.values()] == [500, 500]


def test_a_symbol_stops_after_its_trade_limit() -> None:
    """A symbol stops trading after its trade limit."""
    market = _market(KRAKEN, KRAKEN_INSTRUMENTS[:1], rate=1000, limit=30)
    market.advance(NOW, 1_000_000)
    assert market.histories["XBT/USD"].trade_end == 30


def test_lost_ids_are_every_nth_trade_and_stay_in_the_history() -> None:
    """Lost trades are exactly every nth one, never sent live but kept in the REST history where the
    ingest can backfill them."""
    market = _market(KRAKEN, KRAKEN_INSTRUMENTS[:1], rate=1000)
    market.set_loss(10)
    market.advance(NOW, 100_000)
    trades = market.histories["XBT/USD"].trades
    assert len(trades) == 100
    assert [t.trade_id for t in trades if t.lost] == [t.trade_id for t in trades[9::10]]
    assert all(not t.lost for t in market.histories["XBT/USD"].recent_visible(50))


def test_a_binance_aggregate_holding_a_lost_trade_is_lost_too() -> None:
    """A Binance aggregate trade is lost exactly when it holds a lost trade."""
    market = _market(BINANCE, BINANCE_INSTRUMENTS[:1], rate=1000)
    market.set_loss(3, ["BTCUSDT"])
    market.advance(NOW, 500_000)
    history = market.histories["BTCUSDT"]
    lost = {t.trade_id for t in history.trades if t.lost}
    for agg in history.aggs:
        members = set(range(agg.first_id, agg.last_id + 1))
        assert agg.lost == bool(members & lost)


def test_new_trades_wake_the_connections() -> None:
    """New trades wake every connection waiting for them."""
    market = _market(KRAKEN, KRAKEN_INSTRUMENTS[:1], rate=1000)
    waiter = market.pulse
    assert market.advance(NOW, 10_000) == 10
    assert not waiter.is_set()  # a pulse: set and cleared, waking whoever was waiting
