"""The one factory of an exchange's ingest parts: its adapter, its feed spec, its metrics port.

The ingest, ``k2 doctor``'s probe and the generated Prometheus config build an exchange's parts
here, by name, from the ingest's settings section, so none of them names an exchange or reaches
into another's module. The section is typed by what this factory reads of it
(:class:`IngestSection`): the settings module is built from the registry, so this package never
imports it.

Metrics ports form one block per shard index from ``K2_INGEST__METRICS_PORT`` (9400): the
exchanges take its ports in the registry's order (kraken 9400, binance 9401, ...) and the
streaming job's default is the port right after them (:func:`stream_metrics_port`); shard ``I``
adds ``I`` times a stride of 10 (20 from ten exchanges on), so no two of these ever meet.
"""

from __future__ import annotations

from typing import Protocol

from k2.exchanges import EXCHANGES, exchange_entry
from k2.exchanges.contract import (
    BackfillOptions,
    ExchangeAdapter,
    ExchangeSettings,
    FeedSpec,
    Shard,
)

DEFAULT_METRICS_PORT = 9400  # the first exchange's ingest


class IngestSection(Protocol):
    """What the factory reads of the ingest's settings (``K2_INGEST__*``)."""

    @property
    def source(self) -> str: ...

    @property
    def simulator_url(self) -> str: ...

    @property
    def metrics_port(self) -> int: ...

    @property
    def shard_spec(self) -> Shard: ...

    def exchange(self, name: str) -> ExchangeSettings: ...

    def backfill_options(self) -> BackfillOptions: ...


def adapter_for(exchange: str, ingest: IngestSection) -> ExchangeAdapter:
    """The :class:`ExchangeAdapter` of ``exchange`` for these settings (imported lazily)."""
    adapter_type = exchange_entry(exchange).adapter_type()
    adapter: ExchangeAdapter = adapter_type(
        ingest.exchange(exchange), ingest.backfill_options(), ingest.shard_spec
    )
    return adapter


def feed_spec(ingest: IngestSection, adapter: ExchangeAdapter) -> FeedSpec:
    """The configured symbols, the shard and, for the simulator source, where it listens."""
    symbols = tuple(ingest.exchange(adapter.exchange).symbols)
    if ingest.source == "simulator":
        ws_url, rest_url = adapter.simulator_urls(ingest.simulator_url)
        return FeedSpec(symbols, ws_url, rest_url, shard=ingest.shard_spec)
    return FeedSpec(symbols, shard=ingest.shard_spec)


def shard_stride() -> int:
    """How far apart one exchange's shards' ports are: the smallest multiple of 10 that leaves
    room for every exchange and the streaming job in each block."""
    return 10 * (len(EXCHANGES) // 10 + 1)


def metrics_port(ingest: IngestSection, exchange: str, shard: int | None = None) -> int:
    """The metrics port of ``exchange``'s ingest (shard ``shard``, by default the configured
    one): the base port, plus the exchange's place in the registry, plus the shard's stride.
    0 when the base is 0 (a free port is picked at start)."""
    base = ingest.metrics_port
    if base == 0:
        return 0
    exchange_entry(exchange)  # an unknown name is refused with the known ones
    index = ingest.shard_spec.index if shard is None else shard
    return base + list(EXCHANGES).index(exchange) + shard_stride() * index


def stream_metrics_port() -> int:
    """The streaming job's default metrics port: the first after the exchanges' ingests."""
    return DEFAULT_METRICS_PORT + len(EXCHANGES)
