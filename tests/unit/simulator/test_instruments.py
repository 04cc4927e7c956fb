"""The simulator's instrument catalogue: every Binance symbol splits into its listed assets, and
every Kraken pair has a name of its own."""

from __future__ import annotations

from k2.exchanges.binance import EXCHANGE as BINANCE
from k2.exchanges.binance.normalise import split_symbol
from k2.exchanges.kraken import EXCHANGE as KRAKEN
from k2.simulator.instruments import catalog


def test_every_binance_symbol_splits_into_its_listed_assets() -> None:
    """Silver splits Binance symbols by known quote assets: every listed one must split."""
    for inst in catalog(BINANCE):
        assert split_symbol(inst.symbol) == (inst.base, inst.quote)
    kraken = catalog(KRAKEN)
    assert len({inst.symbol for inst in kraken}) == len({inst.v2_symbol for inst in kraken})
