"""K2's Prometheus alert rules, built from the settings so a threshold has one definition.

``k2 deploy prometheus`` writes them to ``rules/k2.yml`` beside the scrape config; the copy in
``deploy/prometheus/rules/k2.yml`` is what the default settings give (a test keeps it so), and
``deploy/prometheus/tests/k2_test.yml`` proves each rule with ``promtool test rules``, firing and
not firing. Each rule carries a severity (``critical``: data is being lost or not landing;
``warning``: it will be unless someone looks), a summary and a description that says what to do.

Counters that K2 creates on their first event (dead letters, gaps, rejects, quarantine) have no
earlier sample for ``increase()`` to compare with, so :func:`_new_or_rising` also fires for a
series that appeared within the window with a value above zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from k2.config import AlertSettings, IngestSettings, PrometheusSettings, StreamSettings

# Label selector of every K2 scrape job (see :mod:`k2.monitoring.prometheus_config`).
K2_JOBS = 'job=~"k2-.*"'


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule as Prometheus reads it."""

    name: str
    expr: str
    for_s: float
    severity: str
    summary: str
    description: str

    def document(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": duration(self.for_s),
            "labels": {"severity": self.severity},
            "annotations": {"summary": self.summary, "description": self.description},
        }


def duration(seconds: float) -> str:
    """A Prometheus duration: ``90s``, ``5m``, ``500ms``."""
    millis = round(seconds * 1000)
    if millis % 60_000 == 0 and millis:
        return f"{millis // 60_000}m"
    if millis % 1000 == 0:
        return f"{millis // 1000}s"
    return f"{millis}ms"


def _number(value: float) -> str:
    return f"{value:g}"


def _new_or_rising(counter: str, window: str, per_s: float) -> str:
    """``counter`` rose faster than ``per_s`` over ``window``, or appeared in it above zero."""
    if per_s <= 0:
        rising = f"increase({counter}[{window}]) > 0"
    else:
        rising = f"rate({counter}[{window}]) > {_number(per_s)}"
    return f"{rising} or ({counter} > 0 unless {counter} offset {window})"


def _ingest_rules(alerts: AlertSettings, ingest: IngestSettings) -> list[AlertRule]:
    return [*_feed_rules(alerts), *_book_rules(alerts), *_delivery_rules(alerts, ingest)]


def _feed_rules(alerts: AlertSettings) -> list[AlertRule]:
    """The exchange side of the ingest: connection, trades per symbol, gaps."""
    return [
        # Alert names are published (routes and silences match them): this one keeps its first name.
        AlertRule(
            "K2VenueDisconnected",
            "k2_ingest_connected == 0",
            60,
            "critical",
            "{{ $labels.exchange }} feed disconnected for a minute",
            "The {{ $labels.exchange }} ingest ({{ $labels.instance }}) has no exchange "
            "connection; it reconnects by itself and backfills what it missed. Read the reason in "
            "its log (K2_HOME/logs/ingest-{{ $labels.exchange }}.log), check network access and "
            "the exchange's status page; `k2 doctor` tries the exchange directly.",
        ),
        AlertRule(
            "K2SymbolStale",
            f"k2_ingest_last_trade_age_seconds > {_number(alerts.stale_symbol_s)}",
            alerts.stale_for_s,
            "warning",
            "No {{ $labels.exchange }} {{ $labels.symbol }} trade for "
            "{{ $value | humanizeDuration }}",
            "The ingest received no trade of {{ $labels.symbol }} for longer than "
            f"{_number(alerts.stale_symbol_s)} s while its connection is up. A quiet market "
            "can do this; otherwise the subscription is stalled: check the exchange's own trade "
            "feed for the symbol, then restart the ingest (it resumes from Kafka and backfills). "
            "Threshold: K2_ALERTS__STALE_SYMBOL_S.",
        ),
        AlertRule(
            "K2UnfilledGapTrades",
            _new_or_rising("k2_ingest_gap_trades_unfilled_total", "15m", 0),
            0,
            "warning",
            "{{ $labels.exchange }} {{ $labels.symbol }}: trades missed and not backfilled",
            "The ingest knows of trades it missed that the exchange's REST history could not give "
            "back (REST unreachable, rate-limited, or too old). They are recorded as gap events "
            "on market.crypto.gaps (gold.gaps); check the ingest's log for the reason, and the "
            "exchange's REST access.",
        ),
    ]


def _book_rules(alerts: AlertSettings) -> list[AlertRule]:
    """The book capture: a book that its resync does not verify again."""
    return [
        AlertRule(
            "K2BookUnverified",
            "k2_ingest_books_unverified > 0",
            alerts.book_unverified_s,
            "warning",
            "{{ $value }} {{ $labels.exchange }} order books unverified",
            "The book capture could not verify these books against the exchange's checksum or "
            f"sequence for {_number(alerts.book_unverified_s)} s: each break asks for a resync "
            "(a new snapshot), which has not verified them again. Their records say unverified "
            "and the interval is a book gap on market.crypto.gaps. Read `book_unverified` in the "
            "ingest's log (K2_HOME/logs/ingest-{{ $labels.exchange }}.log) for the reason; "
            "breaks that never stop mean the exchange's rule changed. Threshold: "
            "K2_ALERTS__BOOK_UNVERIFIED_S.",
        ),
    ]


def _delivery_rules(alerts: AlertSettings, ingest: IngestSettings) -> list[AlertRule]:
    """The Kafka side of the ingest: refused records, a filling producer queue."""
    queue_bound = ingest.queue_max_messages
    queue_limit = round(queue_bound * alerts.queue_fraction)
    return [
        AlertRule(
            "K2KafkaDeliveryFailures",
            _new_or_rising("k2_ingest_trades_failed_total", "5m", 0),
            0,
            "critical",
            "Kafka refused {{ $labels.exchange }} {{ $labels.symbol }} records",
            "Records were not acknowledged by Kafka. Check the brokers (`k2 stack status`, or "
            "the cluster's health) and the ingest's log for the Kafka error; the ingest "
            "backfills what it could not deliver after a restart.",
        ),
        AlertRule(
            "K2ProducerQueueNearBound",
            f"k2_ingest_producer_queue_depth > {queue_limit}",
            60,
            "warning",
            "{{ $labels.exchange }} producer queue at {{ $value }} of its "
            f"{queue_bound} bound",
            "Kafka acknowledges records slower than the exchange sends them. At the bound the "
            "ingest stops reading the exchange (memory stays bounded) and later backfills the "
            "gap. Check broker latency and disk; K2_INGEST__QUEUE_MAX_MESSAGES sets the bound.",
        ),
    ]


def _bad_record_rules(alerts: AlertSettings) -> list[AlertRule]:
    per_s = alerts.bad_records_per_s
    what = "any" if per_s <= 0 else f"more than {_number(per_s)}/s"
    return [
        AlertRule(
            "K2DeadLetters",
            _new_or_rising("k2_ingest_frames_dead_lettered_total", "5m", per_s),
            0,
            "warning",
            "{{ $labels.exchange }} frames going to the DLQ",
            f"Frames that do not parse ({what} in 5 min) are on "
            "market.crypto.trades.{{ $labels.exchange }}.dlq with the raw text and the error. "
            "Read a few (`k2 topics` / a consumer); an exchange protocol change needs a parser "
            "fix.",
        ),
        AlertRule(
            "K2BronzeRejects",
            _new_or_rising("k2_bronze_rejects_total", "5m", per_s),
            0,
            "warning",
            "{{ $labels.exchange }} records rejected by Bronze ({{ $labels.kind }})",
            f"Records that cannot be decoded ({what} in 5 min) go to "
            "bronze.{{ $labels.exchange }}_rejects with their bytes and the reason; query it "
            "with `k2 sql`. An unknown schema id means a producer registered elsewhere.",
        ),
        AlertRule(
            "K2Quarantined",
            _new_or_rising("k2_silver_quarantined_total", "5m", per_s),
            0,
            "warning",
            "{{ $labels.exchange }} trades quarantined ({{ $labels.reason }})",
            f"Trades failing Silver validation ({what} in 5 min) are kept in silver.quarantine "
            "with their reason codes and raw fields. Look at the reason: clock skew, an exchange "
            "sending odd values, or a validation rule that needs changing.",
        ),
    ]


def _stream_rules(alerts: AlertSettings, stream: StreamSettings) -> list[AlertRule]:
    trigger = stream.trigger_interval_s
    silent_s = alerts.commit_intervals * trigger
    return [
        AlertRule(
            "K2StreamQueryDown",
            "k2_stream_query_active == 0",
            120,
            "critical",
            "The streaming job's query is not running",
            "The Spark query that writes Bronze, Silver and Gold has stopped; the job restarts "
            "it with a back-off. Read the job's log (K2_HOME/logs/stream.log) for the failure.",
        ),
        AlertRule(
            "K2StreamNotCommitting",
            "(k2_stream_last_commit_timestamp_seconds > 0 and time() - "
            f"k2_stream_last_commit_timestamp_seconds > {_number(silent_s)}) and on() "
            "sum(rate(k2_ingest_trades_delivered_total[5m])) > 0",
            60,
            "critical",
            "The streaming job has not committed for {{ $value | humanizeDuration }}",
            f"Trades reach Kafka but no micro-batch committed for {alerts.commit_intervals} "
            f"trigger intervals ({_number(silent_s)} s). Check the job's log for a stuck or "
            "failing batch (catalog locked, out of memory, Kafka unreachable from Spark); "
            "restarting the job resumes exactly where the tables left off.",
        ),
        AlertRule(
            "K2StreamLagGrowing",
            f"sum by (topic) (k2_stream_offset_lag) > {alerts.lag_records} and "
            "deriv(sum by (topic) (k2_stream_offset_lag)[10m:1m]) > 0",
            300,
            "warning",
            "{{ $labels.topic }}: {{ $value }} records behind and growing",
            "The streaming job falls behind the ingest. Check the batch durations on the "
            "dashboard; raise K2_STREAM__MAX_OFFSETS_PER_TRIGGER or give Spark more cores or "
            "memory (K2_SPARK__*). Threshold: K2_ALERTS__LAG_RECORDS.",
        ),
        AlertRule(
            "K2GoldStale",
            f"k2_gold_freshness_seconds > {_number(alerts.freshness_s)}",
            120,
            "warning",
            "Newest {{ $labels.exchange }} trade in Gold is {{ $value | humanizeDuration }} old",
            "gold.trades has no recent trade of this exchange. Follow the data upstream: "
            "`k2 doctor` names the first stage that is broken. Threshold: "
            "K2_ALERTS__FRESHNESS_S.",
        ),
    ]


def _service_rules() -> list[AlertRule]:
    return [
        AlertRule(
            "K2BuildMismatch",
            "count(count by (git_sha) (k2_build_info)) > 1",
            300,
            "warning",
            "K2 services run {{ $value }} different builds",
            "Not every K2 service runs the same git sha, so one of them runs stale code. "
            "`k2 status` marks the service that differs from the installed code; restart it.",
        ),
        AlertRule(
            "K2TargetDown",
            f"up{{{K2_JOBS}}} == 0",
            60,
            "critical",
            "{{ $labels.job }} target {{ $labels.instance }} is down",
            "Prometheus cannot scrape this K2 service: it stopped, or listens elsewhere. "
            "`k2 status` shows what runs; restart the part (or `k2 run`).",
        ),
    ]


def alert_rules(
    alerts: AlertSettings, ingest: IngestSettings, stream: StreamSettings
) -> list[AlertRule]:
    """Every K2 alert, with the thresholds of ``alerts`` and the ingest's queue bound and the
    streaming job's trigger interval they are measured against."""
    return [
        *_ingest_rules(alerts, ingest),
        *_bad_record_rules(alerts),
        *_stream_rules(alerts, stream),
        *_service_rules(),
    ]


def rules_document(
    alerts: AlertSettings,
    ingest: IngestSettings,
    stream: StreamSettings,
    prometheus: PrometheusSettings,
) -> dict[str, Any]:
    """The rule file as data: one group per concern, evaluated every scrape interval."""
    interval = duration(prometheus.scrape_interval_s)
    groups = {
        "k2-ingest": _ingest_rules(alerts, ingest),
        "k2-bad-records": _bad_record_rules(alerts),
        "k2-stream": _stream_rules(alerts, stream),
        "k2-services": _service_rules(),
    }
    return {
        "groups": [
            {"name": name, "interval": interval, "rules": [rule.document() for rule in rules]}
            for name, rules in groups.items()
        ]
    }
