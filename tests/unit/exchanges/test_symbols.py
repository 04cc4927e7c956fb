"""Reference data resolves every way a user may name a pair; unknown symbols are refused by name."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from k2.errors import ExchangeError, UnknownSymbolError
from k2.exchanges import VENUES, venue, venue_for_protocol
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.binance.symbols import parse_exchange_info, resolve_symbols
from k2.exchanges.kraken import wire as kraken_wire
from k2.exchanges.kraken.symbols import parse_asset_pairs, resolve_pairs, v2_name
from k2.transport.http import fetch_json


def kraken_pairs() -> dict[str, object]:
    return json.loads(kraken_wire.render_asset_pairs(["XBT/USD", "XDG/USD", "ETH/EUR"]))  # type: ignore[no-any-return]


def test_kraken_pairs_resolve_by_v1_v2_and_alt_names() -> None:
    listed = parse_asset_pairs(kraken_pairs())
    resolved = resolve_pairs(["XBT/USD", "BTC/USD", "xbtusd", "DOGE/USD"], listed)
    assert [p.wsname for p in resolved] == ["XBT/USD", "XBT/USD", "XBT/USD", "XDG/USD"]
    assert resolved[3].native("kraken-v2") == "DOGE/USD"
    assert resolved[3].native("kraken-v1") == "XDG/USD"
    assert resolved[0].canonical == "BTC/USD"
    assert v2_name("XBT/ETH") == "BTC/ETH"


def test_an_unknown_kraken_pair_is_refused_naming_it() -> None:
    listed = parse_asset_pairs(kraken_pairs())
    with pytest.raises(UnknownSymbolError, match="'FOO/BAR'") as caught:
        resolve_pairs(["BTC/USD", "FOO/BAR"], listed)
    assert "\n" not in str(caught.value)


def test_a_kraken_rest_error_is_an_exchange_error() -> None:
    with pytest.raises(ExchangeError, match="EGeneral:Invalid arguments"):
        parse_asset_pairs({"error": ["EGeneral:Invalid arguments"], "result": {}})


def test_binance_symbols_resolve_natively_and_canonically() -> None:
    info = json.loads(binance_wire.render_exchange_info([("BTC", "USDT"), ("ETH", "BTC")]))
    listed = parse_exchange_info(info)
    resolved = resolve_symbols(["btcusdt", "ETH/BTC", "BTC/USDT"], listed)
    assert [s.symbol for s in resolved] == ["BTCUSDT", "ETHBTC", "BTCUSDT"]
    with pytest.raises(UnknownSymbolError, match="'NOSUCHUSDT'"):
        resolve_symbols(["NOSUCHUSDT"], listed)


def test_the_registry_finds_venues_by_name_and_protocol_without_importing_them_early() -> None:
    assert set(VENUES) == {"kraken", "binance", "coinbase", "okx", "bybit"}
    assert venue("kraken").default_protocol == "kraken-v2"
    assert venue_for_protocol("binance-aggtrade").name == "binance"
    assert venue("binance").client_type().__name__ == "BinanceFeedClient"
    assert venue("kraken").options_type().__name__ == "KrakenFeedOptions"
    with pytest.raises(ExchangeError, match="known: kraken, binance, coinbase"):
        venue("nosuch")


def test_unreachable_reference_data_is_one_line_naming_the_url() -> None:
    with socket.socket() as probe:  # a local port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/api/v3/exchangeInfo"
    with pytest.raises(ExchangeError, match=r"cannot read http://127\.0\.0\.1") as caught:
        asyncio.run(fetch_json(url, 5.0))
    assert "\n" not in str(caught.value)
