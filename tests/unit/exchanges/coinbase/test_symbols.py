"""Coinbase's products list decides what K2 subscribes: names resolved, unknown ones refused in
one line, ``-USDC`` products read as their ``-USD`` twins, every trading product for ``*``."""

from __future__ import annotations

import asyncio
import json

import pytest

from k2.errors import ExchangeError, UnknownSymbolError
from k2.exchanges.coinbase import wire
from k2.exchanges.coinbase.client import CoinbaseFeedClient, CoinbaseFeedOptions
from k2.exchanges.coinbase.symbols import CoinbaseProduct, parse_products, resolve_products
from k2.exchanges.contract import Shard

PRODUCTS = json.loads(
    wire.render_products(
        [
            wire.product_entry("BTC-USD", "BTC", "USD", alias_to=("BTC-USDC",)),
            wire.product_entry("BTC-USDC", "BTC", "USDC", alias="BTC-USD"),
            wire.product_entry("ETH-EUR", "ETH", "EUR"),
            wire.product_entry("USDT-USDC", "USDT", "USDC"),
            wire.product_entry("OLD-USD", "OLD", "USD", status="delisted"),
            wire.product_entry("HALT-USD", "HALT", "USD", trading_disabled=True),
        ]
    )
)


class ListedClient(CoinbaseFeedClient):
    """The client with its products list given, not fetched."""

    async def reference_data(self) -> dict[str, CoinbaseProduct]:
        return parse_products(PRODUCTS)


def test_products_resolve_by_native_and_canonical_names() -> None:
    """BTC-USD, btc-usd and BTC/USD name one product; a -USDC product reads as its -USD twin."""
    listed = parse_products(PRODUCTS)
    resolved = resolve_products(["btc-usd", "ETH/EUR", "BTC/USDC", "USDT-USDC"], listed)
    assert [p.native for p in resolved] == ["BTC-USD", "ETH-EUR", "BTC-USD", "USDT-USDC"]


def test_an_unknown_product_is_refused_in_one_line_naming_it() -> None:
    """A typo stops the ingest before it connects, saying which name is unknown."""
    with pytest.raises(UnknownSymbolError) as refused:
        resolve_products(["BTC-USD", "XBT-USD"], parse_products(PRODUCTS))
    assert str(refused.value) == (
        "coinbase does not list the product 'XBT-USD' (not in its products list)"
    )
    assert "\n" not in str(refused.value)


def test_an_error_answer_is_an_exchange_error() -> None:
    """Coinbase's error body is reported, not read as an empty list."""
    with pytest.raises(ExchangeError, match="rate limit"):
        parse_products({"message": "rate limit exceeded"})


def test_every_symbol_is_every_trading_product_once() -> None:
    """``*``: delisted and disabled products are left out and a book with two names is read
    once; a shard takes its stable share."""
    client = ListedClient(CoinbaseFeedOptions(("*",)))
    natives = asyncio.run(client.list_symbols(("*",)))
    assert natives == ["BTC-USD", "ETH-EUR", "USDT-USDC"]
    halves = [
        asyncio.run(
            ListedClient(CoinbaseFeedOptions(("*",), shard=Shard(i, 2))).list_symbols(["*"])
        )
        for i in (0, 1)
    ]
    assert sorted(halves[0] + halves[1]) == sorted(natives)
    assert not set(halves[0]) & set(halves[1])
