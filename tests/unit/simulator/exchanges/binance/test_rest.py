"""The simulated Binance REST answers as the exchange computes its values."""

from __future__ import annotations

from k2.simulator.exchanges.binance.rest import quote_quantity


def test_binance_quote_quantity_is_exact() -> None:
    """The simulated Binance REST history gives the exact quote quantity, without trailing zeros."""
    assert quote_quantity("4.00000100", "12.00000000") == "48.000012"
    assert quote_quantity("100.00000000", "2.00000000") == "200"
