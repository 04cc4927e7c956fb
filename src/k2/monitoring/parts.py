"""The ports the pipeline's parts are configured to serve their metrics on, which must all differ:
what the supervisor checks before it starts anything and what Prometheus scrapes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from k2.config import ApiSettings, IngestSettings, StreamSettings
from k2.errors import ConfigError
from k2.exchanges.factory import metrics_port


@dataclass(frozen=True, slots=True)
class PartPort:
    """The port one part of the pipeline serves its metrics on, and the setting that moves it."""

    part: str
    port: int  # 0: a free one, picked when the part starts
    setting: str


def part_ports(
    exchanges: Sequence[str], ingest: IngestSettings, stream: StreamSettings, api: ApiSettings
) -> list[PartPort]:
    """Every part's metrics port as configured: each exchange's ingest (each of the
    ``shards_per_exchange`` shards ``k2 run`` starts), the streaming job and the API."""
    shards = ingest.shards_per_exchange
    found = []
    for exchange in exchanges:
        for index in range(shards):
            name = f"ingest-{exchange}" if shards == 1 else f"ingest-{exchange}-{index}"
            port = metrics_port(ingest, exchange, index)
            found.append(PartPort(name, port, "K2_INGEST__METRICS_PORT"))
    found.append(PartPort("stream", stream.metrics_port, "K2_STREAM__METRICS_PORT"))
    found.append(PartPort("api", api.port, "K2_API__PORT"))
    return found


def check_part_ports(
    exchanges: Sequence[str], ingest: IngestSettings, stream: StreamSettings, api: ApiSettings
) -> None:
    """Refuse settings that put two parts on one port, before anything starts: the second part
    would fail to listen (or, on another host, a scrape would read the wrong part)."""
    taken: dict[int, PartPort] = {}
    for part in part_ports(exchanges, ingest, stream, api):
        if part.port == 0:
            continue
        first = taken.setdefault(part.port, part)
        if first is not part:
            to_change = " or ".join(dict.fromkeys((part.setting, first.setting)))
            raise ConfigError(
                f"{first.part} and {part.part} are both configured to serve on port {part.port}; "
                f"change {to_change}"
            )
