"""Reading a service's metrics: labelled families known before their first sample, sums by label,
and rates from two scrapes."""

from __future__ import annotations

from k2.stack.scrape import Rate, parse_metrics

METRICS = """\
# HELP k2_build_info Version and git sha of the running K2 code.
# TYPE k2_build_info gauge
k2_build_info{component="ingest-binance",git_sha="abc",version="0.1.0"} 1.0
# HELP k2_ingest_trades_delivered_total Trades acknowledged by Kafka.
# TYPE k2_ingest_trades_delivered_total counter
k2_ingest_trades_delivered_total{exchange="binance",symbol="BTCUSDT"} 10.0
k2_ingest_trades_delivered_total{exchange="binance",symbol="ETHUSDT"} 5.0
# HELP k2_ingest_gaps_total Gap events (missing trade ranges).
# TYPE k2_ingest_gaps_total counter
"""


def test_a_scrape_knows_families_without_samples_and_sums_by_label() -> None:
    """A labelled counter before its first event is a known family; samples sum by label."""
    scrape = parse_metrics(METRICS, at=1.0)
    assert "k2_ingest_gaps" in scrape.families and not scrape.series("k2_ingest_gaps_total")
    assert scrape.total("k2_ingest_trades_delivered_total") == 15
    assert scrape.by("k2_ingest_trades_delivered_total", "symbol") == {
        ("BTCUSDT",): 10,
        ("ETHUSDT",): 5,
    }
    assert scrape.build()["git_sha"] == "abc"


def test_rates_come_from_two_scrapes() -> None:
    """Delivered per second is the counter's rise over the time between two scrapes."""
    rate = Rate()
    assert rate.update(parse_metrics(METRICS, at=1.0), "k2_ingest_trades_delivered_total") == {}
    later = METRICS.replace("} 10.0", "} 30.0")
    rates = rate.update(parse_metrics(later, at=3.0), "k2_ingest_trades_delivered_total", "symbol")
    assert rates == {("BTCUSDT",): 10.0, ("ETHUSDT",): 0.0}
