"""The book capture's counts reach Prometheus under their documented names and labels."""

from __future__ import annotations

from prometheus_client import generate_latest

from k2.observability.metrics import BookCounters, Metrics


def test_book_counts_are_exported_by_verdict_reason_and_state() -> None:
    """Each kind of count is one metric family labelled by exchange and what it counts."""
    stats = {
        "messages:verified": 7,
        "messages:unverified": 2,
        "breaks:checksum_mismatch": 1,
        "resyncs": 1,
        "records:delivered": 9,
        "records:failed": 0,
        "unverified": 1,
    }
    metrics = Metrics("ingest-kraken")
    metrics.registry.register(BookCounters("kraken", lambda: stats))
    text = generate_latest(metrics.registry).decode()
    for line in (
        'k2_ingest_book_messages_total{exchange="kraken",outcome="verified"} 7.0',
        'k2_ingest_book_messages_total{exchange="kraken",outcome="unverified"} 2.0',
        'k2_ingest_book_breaks_total{exchange="kraken",reason="checksum_mismatch"} 1.0',
        'k2_ingest_book_resyncs_total{exchange="kraken"} 1.0',
        'k2_ingest_book_records_total{exchange="kraken",state="delivered"} 9.0',
        'k2_ingest_books_unverified{exchange="kraken"} 1.0',
    ):
        assert line in text, line
