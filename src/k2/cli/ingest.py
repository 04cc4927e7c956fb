"""``k2 ingest``: one venue's feed into its raw Kafka topic."""

from __future__ import annotations

from typing import Any

import click

from k2.cli.context import settings_of
from k2.config import KNOWN_EXCHANGES
from k2.errors import K2Error


@click.command("ingest")
@click.option(
    "--exchange", required=True, type=click.Choice(KNOWN_EXCHANGES), help="Venue to ingest."
)
@click.option(
    "--symbols",
    help="Comma-separated symbols as the venue names them (default: K2_INGEST__<VENUE>_SYMBOLS).",
)
@click.option(
    "--source",
    type=click.Choice(["live", "simulator"]),
    help="live venues, or a local `k2 simulate` at K2_INGEST__SIMULATOR_URL (default: live).",
)
@click.option(
    "--kraken-protocol",
    type=click.Choice(["kraken-v2", "kraken-v1"]),
    help="Kraken WebSocket version (default: kraken-v2).",
)
@click.option(
    "--binance-stream",
    type=click.Choice(["trade", "aggTrade"]),
    help="Binance stream (default: trade).",
)
@click.option("--simulator-url", help="Base URL of `k2 simulate` for --source simulator.")
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0),
    help="Port of /metrics and /healthz (default: K2_INGEST__METRICS_PORT + the exchange's "
    "index; 0 picks a free one).",
)
@click.pass_context
def ingest(
    ctx: click.Context,
    exchange: str,
    symbols: str | None,
    source: str | None,
    kraken_protocol: str | None,
    binance_stream: str | None,
    simulator_url: str | None,
    metrics_port: int | None,
) -> None:
    """Stream one venue's trades into Kafka (market.crypto.trades.<exchange>.raw), durably.

    One Avro record per trade (Confluent wire format, key = symbol) with acks=all and
    idempotence. After a restart it resumes from the last trade id in the topic and backfills
    what it missed from the venue's REST history; what cannot be filled is published on
    market.crypto.gaps. Unparseable frames go to the .dlq topic. Prometheus /metrics and
    /healthz on K2_INGEST__METRICS_PORT (+1 per exchange after the first). Ctrl-C or SIGTERM
    flushes (bounded by K2_INGEST__FLUSH_TIMEOUT_S) and reports anything undelivered.
    """
    from k2.ingest.service import run_ingest  # noqa: PLC0415

    settings = settings_of(ctx)
    update: dict[str, Any] = {
        "source": source,
        "kraken_protocol": kraken_protocol,
        "binance_stream": binance_stream,
        "simulator_url": simulator_url,
    }
    if symbols:
        update[f"{exchange}_symbols"] = tuple(s.strip() for s in symbols.split(",") if s.strip())
    update = {key: value for key, value in update.items() if value is not None}
    if update:
        ingest_settings = settings.ingest.model_copy(update=update)
        settings = settings.model_copy(update={"ingest": ingest_settings})
    undelivered = run_ingest(settings, exchange, metrics_port)
    if undelivered:
        raise K2Error(
            f"{undelivered} records were not acknowledged by Kafka before the flush timeout; "
            "the next start backfills them from the venue"
        )
