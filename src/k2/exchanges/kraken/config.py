"""Kraken's settings section: ``K2_INGEST__KRAKEN__*``."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from k2.exchanges.contract import ExchangeSettings


class KrakenSettings(ExchangeSettings):
    """Which Kraken pairs to ingest, over which WebSocket version."""

    symbols: tuple[str, ...] = Field(
        ("BTC/USD", "ETH/USD"),
        description='Kraken pairs as the exchange\'s WebSocket names them, or ["*"] for every pair '
        "AssetPairs lists as online.",
    )
    protocol: Literal["kraken-v2", "kraken-v1"] = Field(
        "kraken-v2",
        description="Kraken WebSocket version. v1 carries no trade ids, so a reconnect there "
        "can only be reported as a gap over a time interval, never backfilled.",
    )

    book_depths: ClassVar[tuple[int, ...]] = (10, 25, 100, 500, 1000)
    default_book_depth: ClassVar[int | None] = 10

    def protocol_changes(self, protocol: str) -> dict[str, Any]:
        if protocol not in ("kraken-v2", "kraken-v1"):
            return super().protocol_changes(protocol)
        return {"protocol": protocol}
