"""The simulated Bybit's trade ids: one counter shared by every symbol."""

from __future__ import annotations

from k2.simulator.exchanges.bybit.ids import STRIDE, SharedIds, per_symbol
from k2.simulator.instruments import catalog


def test_ids_are_one_counter_unique_across_symbols_and_rising_per_symbol() -> None:
    """Every symbol's ids rise, no two symbols share one, and each maps back to its own id."""
    symbols = [inst.symbol for inst in catalog("bybit")]
    assert len(symbols) <= STRIDE
    ids = SharedIds(symbols)
    seen = {ids.shared(symbol, n) for symbol in symbols for n in (7, 8)}
    assert len(seen) == 2 * len(symbols)
    assert all(ids.shared(s, 8) - ids.shared(s, 7) == STRIDE for s in symbols)
    assert per_symbol(ids.shared("ETHUSDT", 12345)) == 12345
