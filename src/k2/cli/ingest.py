"""``k2 ingest``: one exchange's feed (or one shard of it) into its raw Kafka topic."""

from __future__ import annotations

import click

from k2.cli.context import settings_of
from k2.config import KNOWN_EXCHANGES, revised
from k2.errors import K2Error
from k2.exchanges import EXCHANGES

_PROTOCOLS = [protocol for entry in EXCHANGES.values() for protocol in entry.protocols]


@click.command("ingest")
@click.option(
    "--exchange", required=True, type=click.Choice(KNOWN_EXCHANGES), help="Exchange to ingest."
)
@click.option(
    "--symbols",
    help="Comma-separated symbols as the exchange names them, or `all` for every symbol the "
    "exchange lists as trading (default: K2_INGEST__<EXCHANGE>__SYMBOLS).",
)
@click.option(
    "--shard",
    help="I/N: ingest the stable share I of N of the exchange's symbols (default: 0/1, all).",
)
@click.option(
    "--source",
    type=click.Choice(["live", "simulator"]),
    help="live exchanges, or a local `k2 simulate` at K2_INGEST__SIMULATOR_URL (default: live).",
)
@click.option(
    "--protocol",
    type=click.Choice(_PROTOCOLS),
    help="WebSocket protocol of the exchange (default: the exchange's first: "
    + ", ".join(entry.default_protocol for entry in EXCHANGES.values())
    + ").",
)
@click.option("--simulator-url", help="Base URL of `k2 simulate` for --source simulator.")
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0),
    help="Port of /metrics and /healthz (default: K2_INGEST__METRICS_PORT + the exchange's "
    "place in the registry + 10 x shard; 0 picks a free one).",
)
@click.pass_context
def ingest(
    ctx: click.Context,
    exchange: str,
    symbols: str | None,
    shard: str | None,
    source: str | None,
    protocol: str | None,
    simulator_url: str | None,
    metrics_port: int | None,
) -> None:
    """Stream one exchange's trades into Kafka (market.crypto.trades.<exchange>.raw), durably.

    One Avro record per trade (Confluent wire format, key = symbol) with acks=all and
    idempotence, over as many WebSocket connections as the exchange's limits need. After a
    restart it resumes from the last trade id in the topic; gaps are backfilled from the exchange's
    REST history while live trades keep flowing, and what cannot be filled is published on
    market.crypto.gaps. Unparseable frames go to the .dlq topic. Prometheus /metrics and
    /healthz on K2_INGEST__METRICS_PORT (+1 per exchange, +10 per shard). Ctrl-C or SIGTERM
    flushes (bounded by K2_INGEST__FLUSH_TIMEOUT_S) and reports anything undelivered.
    """
    from k2.ingest.service import run_ingest

    settings = settings_of(ctx)
    ingest_settings = settings.ingest
    shared = {"source": source, "simulator_url": simulator_url, "shard": shard}
    shared = {key: value for key, value in shared.items() if value is not None}
    if shared:
        ingest_settings = revised(ingest_settings, **shared)
    section: dict[str, object] = {}
    if symbols:
        names = [s.strip() for s in symbols.split(",") if s.strip()]
        section["symbols"] = ("*",) if [n.lower() for n in names] == ["all"] else tuple(names)
    if protocol:
        section.update(ingest_settings.exchange(exchange).protocol_changes(protocol))
    if section:
        ingest_settings = ingest_settings.with_exchange(exchange, **section)
    settings = revised(settings, ingest=ingest_settings)
    undelivered = run_ingest(settings, exchange, metrics_port)
    if undelivered:
        raise K2Error(
            f"{undelivered} records were not acknowledged by Kafka before the flush timeout; "
            "the next start backfills them from the exchange"
        )
