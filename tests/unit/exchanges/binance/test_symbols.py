"""Binance's exchange info resolves every way a user may name a symbol; unknown ones are refused
by name."""

from __future__ import annotations

import json

import pytest

from k2.errors import UnknownSymbolError
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.binance.symbols import parse_exchange_info, resolve_symbols


def test_binance_symbols_resolve_natively_and_canonically() -> None:
    """A Binance symbol named natively in any case or canonically is one symbol, and one Binance
    does not list is refused by name."""
    info = json.loads(binance_wire.render_exchange_info([("BTC", "USDT"), ("ETH", "BTC")]))
    listed = parse_exchange_info(info)
    resolved = resolve_symbols(["btcusdt", "ETH/BTC", "BTC/USDT"], listed)
    assert [s.symbol for s in resolved] == ["BTCUSDT", "ETHBTC", "BTCUSDT"]
    with pytest.raises(UnknownSymbolError, match="'NOSUCHUSDT'"):
        resolve_symbols(["NOSUCHUSDT"], listed)
