"""Bybit's settings section: ``K2_INGEST__BYBIT__*``."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from k2.exchanges.bybit.wire import BOOK_DEPTHS
from k2.exchanges.contract import ExchangeSettings


class BybitSettings(ExchangeSettings):
    """Which Bybit spot symbols to ingest (v5 ``publicTrade``, the one protocol)."""

    symbols: tuple[str, ...] = Field(
        ("BTCUSDT", "ETHUSDT"),
        description='Bybit spot symbols, or ["*"] for every symbol instruments-info lists as '
        "Trading.",
    )

    book_depths: ClassVar[tuple[int, ...]] = BOOK_DEPTHS
    default_book_depth: ClassVar[int | None] = 50

    def protocol_changes(self, protocol: str) -> dict[str, Any]:
        if protocol != "bybit-spot":
            return super().protocol_changes(protocol)
        return {}
