"""Coinbase's settings section: ``K2_INGEST__COINBASE__*``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from k2.exchanges.contract import ExchangeSettings


class CoinbaseSettings(ExchangeSettings):
    """Which Coinbase Advanced Trade products to ingest."""

    symbols: tuple[str, ...] = Field(
        ("BTC-USD", "ETH-USD"),
        description='Coinbase products (BTC-USD or BTC/USD), or ["*"] for every spot product '
        "the public products list shows as online and trading. A -USDC product is read from "
        "its -USD twin, which carries its trades on the market channels.",
    )

    def protocol_changes(self, protocol: str) -> dict[str, Any]:
        if protocol != "coinbase-advanced":
            return super().protocol_changes(protocol)
        return {}
