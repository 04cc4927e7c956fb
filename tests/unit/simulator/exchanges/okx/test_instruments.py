"""The simulated OKX's instruments: an exchange-sized universe of spot names."""

from __future__ import annotations

from k2.simulator.exchanges.okx.instruments import catalog


def test_the_universe_is_exchange_sized_and_every_name_is_spot() -> None:
    """The simulated OKX lists 700 distinct spot instruments."""
    names = [inst.symbol for inst in catalog()]
    assert len(names) == len(set(names)) == 700
    assert all(name.count("-") == 1 for name in names)
