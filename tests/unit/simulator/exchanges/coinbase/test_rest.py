"""The simulated Coinbase's REST history: -USDC products stand for -USD, trades name the maker."""

from __future__ import annotations

from k2.simulator.exchanges.coinbase.rest import alias_of, maker_side
from k2.simulator.market import SimTrade


def test_usdc_products_stand_for_usd_and_the_history_names_the_maker() -> None:
    """BTC-USDC reads BTC-USD's book; a taker buy is a maker sell in the history."""
    assert alias_of("BTC-USDC") == "BTC-USD" and alias_of("BTC-USD") is None
    assert maker_side(SimTrade(1, "1", "1", 0, "buy", "limit", 1)) == "sell"
    assert maker_side(SimTrade(2, "1", "1", 0, "sell", "market", 2)) == "buy"
