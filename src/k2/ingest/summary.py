"""The ingest's periodic INFO summary, and the warning for a feed that only replays old trades."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from k2.ingest.service import IngestService

log = structlog.get_logger("k2.ingest.service")

_PER_SYMBOL_UP_TO = 20  # beyond this many symbols the summary gives totals, not one line each


def log_summary(service: IngestService, event: str) -> None:
    """One INFO line: totals, the feed's own counts and, for a few symbols, each symbol's."""
    producer = service.producer
    depth = producer.queue_depth()
    service.metrics.queue_depth.labels(service.exchange).set(depth)
    symbols = service.state.symbols
    detail: dict[str, object] = {"symbols": len(symbols)}
    if len(symbols) <= _PER_SYMBOL_UP_TO:
        detail["per_symbol"] = {
            symbol: (
                f"received={c.received} delivered={c.delivered} failed={c.failed} "
                f"gaps={c.gaps} backfilled={c.backfilled}"
            )
            for symbol, c in sorted(symbols.items())
        }
    else:
        detail["gaps"] = sum(c.gaps for c in symbols.values())
        detail["backfilled"] = sum(c.backfilled for c in symbols.values())
    stats = producer.stats
    log.info(
        event,
        exchange=service.exchange,
        received=stats.produced,
        delivered=stats.delivered,
        failed=stats.failed,
        in_flight=stats.in_flight,
        queue_depth=depth,
        dead_lettered=service.state.dead_lettered,
        feed=service.state.feed.counts(),
        **detail,
    )


async def watch_replays(service: IngestService, stop: asyncio.Event) -> None:
    """Every ``summary_interval_s``: the summary, and a WARNING when everything received in the
    interval was a replay of trades already in Kafka."""
    produced, replayed = 0, 0
    while not stop.is_set():
        await asyncio.sleep(service.options.summary_interval_s)
        log_summary(service, "ingest_summary")
        now_produced = service.producer.stats.produced
        now_replayed = service.state.feed.duplicates_dropped
        if now_replayed > replayed and now_produced == produced:
            log.warning(
                "ingest_only_replayed_trades",
                exchange=service.exchange,
                dropped=now_replayed - replayed,
                hint="every trade received had an id at or below the last one already in "
                "Kafka; an exchange whose ids went back (a simulator restarted with a fixed "
                "--id-base) delivers nothing new until its ids pass them",
            )
        produced, replayed = now_produced, now_replayed
