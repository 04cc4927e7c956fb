"""Kraken's asset pairs resolve every way a user may name a pair; unknown pairs are refused
by name."""

from __future__ import annotations

import json

import pytest

from k2.errors import ExchangeError, UnknownSymbolError
from k2.exchanges.kraken import wire as kraken_wire
from k2.exchanges.kraken.symbols import parse_asset_pairs, resolve_pairs, v2_name


def kraken_pairs() -> dict[str, object]:
    return json.loads(kraken_wire.render_asset_pairs(["XBT/USD", "XDG/USD", "ETH/EUR"]))  # type: ignore[no-any-return]


def test_kraken_pairs_resolve_by_v1_v2_and_alt_names() -> None:
    """A Kraken pair named the v1 way, the v2 way, canonically or by its alt name is one pair,
    subscribed under the name each protocol expects."""
    listed = parse_asset_pairs(kraken_pairs())
    resolved = resolve_pairs(["XBT/USD", "BTC/USD", "xbtusd", "DOGE/USD"], listed)
    assert [p.wsname for p in resolved] == ["XBT/USD", "XBT/USD", "XBT/USD", "XDG/USD"]
    assert resolved[3].native("kraken-v2") == "DOGE/USD"
    assert resolved[3].native("kraken-v1") == "XDG/USD"
    assert resolved[0].canonical == "BTC/USD"
    assert v2_name("XBT/ETH") == "BTC/ETH"


def test_an_unknown_kraken_pair_is_refused_naming_it() -> None:
    """A pair Kraken does not list stops the ingest with one line naming it."""
    listed = parse_asset_pairs(kraken_pairs())
    with pytest.raises(UnknownSymbolError, match="'FOO/BAR'") as caught:
        resolve_pairs(["BTC/USD", "FOO/BAR"], listed)
    assert "\n" not in str(caught.value)


def test_a_kraken_rest_error_is_an_exchange_error() -> None:
    """An error answer from Kraken's asset-pairs endpoint is reported as Kraken's error, not read as
    an empty list."""
    with pytest.raises(ExchangeError, match="EGeneral:Invalid arguments"):
        parse_asset_pairs({"error": ["EGeneral:Invalid arguments"], "result": {}})
