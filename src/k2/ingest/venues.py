"""What the ingest needs from each venue, gathered behind one interface.

The service itself names no venue: every venue-specific step (the feed client and its options,
the trade's ``message_id``, the Avro record, the trade id inside a record, the REST backfill)
comes from the venue package through :class:`VenueIngest`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from k2.config import IngestSettings
from k2.errors import ExchangeError
from k2.exchanges.base import FeedClient, RawTrade


@dataclass(frozen=True)
class FeedSpec:
    """Where the feed reads from, and what was delivered before this run."""

    symbols: tuple[str, ...]
    ws_url: str | None = None  # None: the venue's public URL
    rest_url: str | None = None  # None: the venue's public URL
    last_trade_ids: Mapping[str, int] = field(default_factory=dict)


class BackfillError(ExchangeError):
    """The venue's history could not be read; the gap is published as unfilled."""


class VenueIngest(Protocol):
    """The venue-specific steps of the ingest."""

    exchange: str
    schema_name: str

    def client(self, spec: FeedSpec) -> FeedClient: ...

    def simulator_urls(self, base_url: str) -> tuple[str, str]:
        """(WebSocket URL, REST URL) of the venue on a local simulator at ``base_url``."""
        ...

    def native_symbols(self, symbols: Sequence[str]) -> set[str]:
        """The configured symbols as the raw topic's keys spell them."""
        ...

    def message_id(self, raw: RawTrade) -> str: ...

    def to_record(self, raw: RawTrade, message_id: str, k2_version: str) -> dict[str, Any]: ...

    def record_trade_id(self, record: Mapping[str, Any]) -> int | None:
        """The trade id of a record read back from the raw topic, for this run's id sequence
        (None when the record has no id, or one of another sequence)."""
        ...

    def exchange_us(self, raw: RawTrade) -> int | None:
        """When the venue matched the trade (µs since the epoch), if readable."""
        ...

    def record_exchange_us(self, record: Mapping[str, Any]) -> int | None:
        """The same, from an Avro record read back from the raw topic."""
        ...

    async def backfill(
        self, spec: FeedSpec, symbol: str, first_id: int, last_id: int, after_us: int | None
    ) -> list[RawTrade]:
        """Trades ``first_id``..``last_id`` of ``symbol`` from the venue's REST history, at most
        ``backfill_max_trades``; ``after_us`` is the match time of the trade before the gap.
        Raises :class:`BackfillError` when the history cannot be read."""
        ...


def simulator_ws_base(base_url: str) -> str:
    """The WebSocket base of a local simulator at the HTTP ``base_url`` (one port serves both)."""
    ws = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return ws.rstrip("/")


def venue_ingest(exchange: str, settings: IngestSettings) -> VenueIngest:
    """The :class:`VenueIngest` of ``exchange`` (imported lazily)."""
    if exchange == "kraken":
        from k2.exchanges.kraken.ingest import KrakenIngest  # noqa: PLC0415

        return KrakenIngest(settings)
    if exchange == "binance":
        from k2.exchanges.binance.ingest import BinanceIngest  # noqa: PLC0415

        return BinanceIngest(settings)
    raise ExchangeError(f"no ingest for exchange {exchange!r}; known: kraken, binance")
