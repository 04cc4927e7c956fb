"""Binance's settings section: ``K2_INGEST__BINANCE__*``."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from k2.exchanges.contract import ExchangeSettings


class BinanceSettings(ExchangeSettings):
    """Which Binance spot symbols to ingest, from which stream, in which time unit."""

    symbols: tuple[str, ...] = Field(
        ("BTCUSDT", "ETHUSDT"),
        description='Binance spot symbols, or ["*"] for every symbol exchangeInfo lists as '
        "TRADING.",
    )
    stream: Literal["trade", "aggTrade"] = Field(
        "trade", description="Binance stream: every trade, or aggregate trades."
    )
    time_unit: Literal["MILLISECOND", "MICROSECOND"] = Field(
        "MICROSECOND", description="Unit of Binance's trade times (stream and REST backfill)."
    )

    # levels a side of the REST snapshot the diff depth stream continues (its weight tiers)
    book_depths: ClassVar[tuple[int, ...]] = (100, 500, 1000, 5000)
    default_book_depth: ClassVar[int | None] = 1000

    def protocol_changes(self, protocol: str) -> dict[str, Any]:
        streams = {"binance-trade": "trade", "binance-aggtrade": "aggTrade"}
        if protocol not in streams:
            return super().protocol_changes(protocol)
        return {"stream": streams[protocol]}
