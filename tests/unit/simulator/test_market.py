"""The synthetic market: deterministic per seed, sequential ids, exact decimal strings."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

from k2.simulator.exchanges.binance.instruments import BINANCE_INSTRUMENTS
from k2.simulator.exchanges.kraken.instruments import KRAKEN_INSTRUMENTS
from k2.simulator.instruments import Instrument
from k2.simulator.market import SymbolGenerator, SymbolHistory, format_units, units_formatter

NOW = 1_750_000_000_000_000
XBTUSD = KRAKEN_INSTRUMENTS[0]
BTCUSDT = BINANCE_INSTRUMENTS[0]


def _generate(instrument: Instrument, seed: int, batches: list[int]) -> list[tuple[object, ...]]:
    generator = SymbolGenerator(instrument, seed)
    out = []
    for count in batches:
        trades, _ = generator.generate(count, NOW)
        out += [(t.trade_id, t.price, t.qty, t.side, t.ord_type) for t in trades]
    return out


def test_same_seed_gives_the_same_trades_whatever_the_batching() -> None:
    """The same seed makes the same trades, however they are asked for in batches."""
    assert _generate(XBTUSD, 7, [500]) == _generate(XBTUSD, 7, [1, 99, 3, 397])


def test_another_seed_gives_another_market() -> None:
    """Another seed makes another market."""
    assert _generate(XBTUSD, 7, [50]) != _generate(XBTUSD, 8, [50])


def test_trade_ids_are_sequential_per_symbol() -> None:
    """A symbol's trade ids follow one another without a hole."""
    ids = [row[0] for row in _generate(BTCUSDT, 3, [200, 300])]
    assert ids == list(range(ids[0], ids[0] + 500))


def test_prices_and_sizes_are_exact_strings_on_the_tick_and_lot_grid() -> None:
    """Every generated price and size is a decimal string with the instrument's decimals, on its
    tick and lot grid, within its range."""
    for instrument in (*KRAKEN_INSTRUMENTS, *BINANCE_INSTRUMENTS):
        trades, _ = SymbolGenerator(instrument, 1).generate(300, NOW)
        tick = Decimal(instrument.tick_text)
        step = Decimal(instrument.step_text)
        for trade in trades:
            price, qty = Decimal(trade.price), Decimal(trade.qty)
            assert len(trade.price.partition(".")[2]) == instrument.price_text_decimals
            assert len(trade.qty.partition(".")[2]) == instrument.qty_text_decimals
            assert price % tick == 0 and qty % step == 0
            assert Decimal(instrument.low) <= price <= Decimal(instrument.high)
            assert qty > 0


def test_kraken_times_strictly_increase_and_binance_fills_share_their_order_time() -> None:
    """Kraken trade times strictly increase, and the fills of one Binance order may share its time
    but never go back."""
    kraken, _ = SymbolGenerator(XBTUSD, 1).generate(500, NOW)
    assert all(a.time_us < b.time_us for a, b in pairwise(kraken))
    binance, _ = SymbolGenerator(BTCUSDT, 1).generate(500, NOW)
    assert all(a.time_us <= b.time_us for a, b in pairwise(binance))


def test_binance_aggregates_cover_every_trade_once_with_summed_quantities() -> None:
    """Binance aggregate trades cover every trade once, at one price, with their summed quantities
    and consecutive aggregate ids."""
    trades, aggs = SymbolGenerator(BTCUSDT, 2).generate(1000, NOW)
    by_id = {trade.trade_id: trade for trade in trades}
    covered = []
    for agg in aggs:
        fills = [by_id[i] for i in range(agg.first_id, agg.last_id + 1)]
        assert {fill.price for fill in fills} == {agg.price}
        assert sum(Decimal(fill.qty) for fill in fills) == Decimal(agg.qty)
        assert all(fill.agg_id == agg.agg_id for fill in fills)
        covered += range(agg.first_id, agg.last_id + 1)
    assert covered == sorted(by_id)[: len(covered)]
    assert [agg.agg_id for agg in aggs] == list(range(aggs[0].agg_id, aggs[0].agg_id + len(aggs)))


def test_format_units_is_exact() -> None:
    """Integer units become the exact decimal string with the instrument's decimals."""
    assert format_units(6543219, 1, 5) == "654321.90000"
    assert format_units(5, 8, 8) == "0.00000005"
    assert format_units(42, 0, 0) == "42"
    assert units_formatter(2, 8)(123456) == "1234.56000000"


def test_history_keeps_positions_valid_while_trimming() -> None:
    """A symbol's history keeps only its retention, and a reader left behind by the trimming is told
    so instead of skipping trades."""
    generator = SymbolGenerator(XBTUSD, 1)
    history = SymbolHistory(XBTUSD, retention=100)
    for _ in range(5):
        history.extend(*generator.generate(100, NOW))
    assert history.trade_end == 500
    assert history.trades_from(0) is None  # trimmed: a cursor this old fell behind
    recent = history.trades_from(450)
    assert recent is not None and len(recent) == 50
    assert recent[0].trade_id == history.trades[-50].trade_id


def test_history_lookups_by_id_and_time() -> None:
    """A symbol's history answers REST lookups by trade id, by time and for the most recent
    trades."""
    generator = SymbolGenerator(XBTUSD, 1)
    history = SymbolHistory(XBTUSD, retention=1000)
    history.extend(*generator.generate(100, NOW))
    first = history.trades[0]
    assert [t.trade_id for t in history.trades_from_id(first.trade_id + 10, 3)] == [
        first.trade_id + 10,
        first.trade_id + 11,
        first.trade_id + 12,
    ]
    after = history.trades_after_time(history.trades[9].time_us, 5)
    assert after[0].trade_id == history.trades[10].trade_id
    assert history.trades_from_id(None, 2) == history.trades[-2:]
    assert history.recent_visible(50) == history.trades[-50:]
