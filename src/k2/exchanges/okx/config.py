"""OKX's settings section: ``K2_INGEST__OKX__*``."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from k2.exchanges.contract import ExchangeSettings


class OkxSettings(ExchangeSettings):
    """Which OKX spot instruments to ingest (``BASE-QUOTE``, e.g. ``BTC-USDT``)."""

    symbols: tuple[str, ...] = Field(
        ("BTC-USDT", "ETH-USDT"),
        description='OKX spot instrument ids (BTC-USDT), or ["*"] for every SPOT instrument '
        "/api/v5/public/instruments lists as live.",
    )

    book_depths: ClassVar[tuple[int, ...]] = (400,)  # the books channel's snapshot
    default_book_depth: ClassVar[int | None] = 400

    def protocol_changes(self, protocol: str) -> dict[str, Any]:
        if protocol != "okx-trades-all":
            return super().protocol_changes(protocol)
        return {}
