"""K2's alert rules: generated from the settings, reading only metrics K2 defines, and each rule
proven with ``promtool test rules`` both firing and not firing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from k2.config import AlertSettings, Settings, StreamSettings
from k2.monitoring.alert_rules import rules_document
from k2.monitoring.prometheus_config import dump_yaml
from tests.monitoring import (
    RULES,
    alert_rules,
    expand,
    family_of,
    k2_families,
    metric_names,
    run_promtool,
)

RULE_TESTS = RULES.parents[1] / "tests" / "k2_test.yml"
_TESTS_HEADER = (
    "# promtool unit tests of every K2 alert (firing and not firing): promtool test rules\n"
    "# <this file>. Generated from the cases in tests/unit/monitoring/test_alert_rules.py:\n"
    "# .venv/bin/python -m tests.unit.monitoring.test_alert_rules\n"
)
INGEST = {"job": "k2-ingest", "instance": "127.0.0.1:9401", "exchange": "binance"}
STREAM = {"job": "k2-stream", "instance": "127.0.0.1:9402", "component": "stream"}


def _defaults() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def _series(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


@dataclass
class Case:
    """One rule under test: input series, when it fires (labels, $value) and when it must not."""

    rule: str
    series: list[tuple[str, dict[str, str], str]]
    fires_at: str
    labels: dict[str, str]
    value: float
    quiet_at: list[str]
    quiet_series: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    quiet_series_at: str = ""


def _binance(symbol: str | None = None, **extra: str) -> dict[str, str]:
    labels = dict(INGEST)
    if symbol is not None:
        labels["symbol"] = symbol
    return {**labels, **extra}


CASES = [
    Case(
        "K2VenueDisconnected",
        [("k2_ingest_connected", _binance(), "1 1 0 0 0 0 0 0")],
        "5m",
        _binance(),
        0,
        ["2m"],
        [("k2_ingest_connected", _binance(), "1x8")],
        "5m",
    ),
    Case(
        "K2SymbolStale",
        [("k2_ingest_last_trade_age_seconds", _binance("BTCUSDT"), "10 100 200 400 420 480 540")],
        "6m",
        _binance("BTCUSDT"),
        540,
        ["2m", "3m"],
        [("k2_ingest_last_trade_age_seconds", _binance("BTCUSDT"), "1x8")],
        "6m",
    ),
    Case(
        "K2UnfilledGapTrades",
        [("k2_ingest_gap_trades_unfilled_total", _binance("BTCUSDT"), "_ _ _ 5 5 5")],
        "4m",
        _binance("BTCUSDT"),
        5,
        ["2m"],
        [("k2_ingest_gap_trades_unfilled_total", _binance("BTCUSDT"), "0x30")],
        "20m",
    ),
    Case(
        "K2BookUnverified",
        [("k2_ingest_books_unverified", _binance(), "0 0 2 2 2 2 2")],
        "5m",
        _binance(),
        2,
        ["2m", "3m"],
        [("k2_ingest_books_unverified", _binance(), "0 1 0 1 0 1 0 1")],
        "7m",
    ),
    Case(
        "K2KafkaDeliveryFailures",
        [("k2_ingest_trades_failed_total", _binance("BTCUSDT"), "0 0 0 2 2 2")],
        "4m",
        _binance("BTCUSDT"),
        2,
        ["2m", "10m"],
    ),
    Case(
        "K2ProducerQueueNearBound",
        [("k2_ingest_producer_queue_depth", _binance(), "100 90000 90000 90000 90000")],
        "3m",
        _binance(),
        90000,
        ["0m", "1m"],
        [("k2_ingest_producer_queue_depth", _binance(), "70000x5")],
        "4m",
    ),
    Case(
        "K2DeadLetters",
        [("k2_ingest_frames_dead_lettered_total", _binance(), "_ _ 1 1 1")],
        "3m",
        _binance(),
        1,
        ["1m"],
        [("k2_ingest_frames_dead_lettered_total", _binance(), "0x10")],
        "8m",
    ),
    Case(
        "K2BronzeRejects",
        [("k2_bronze_rejects_total", {**STREAM, "exchange": "binance", "kind": "magic"}, "0 0 4")],
        "2m",
        {**STREAM, "exchange": "binance", "kind": "magic"},
        4,
        ["1m"],
    ),
    Case(
        "K2Quarantined",
        [
            (
                "k2_silver_quarantined_total",
                {**STREAM, "exchange": "kraken", "reason": "price_not_positive"},
                "_ _ 2 2",
            )
        ],
        "3m",
        {**STREAM, "exchange": "kraken", "reason": "price_not_positive"},
        2,
        ["1m"],
    ),
    Case(
        "K2StreamQueryDown",
        [("k2_stream_query_active", STREAM, "1 1 0 0 0 0 0 0")],
        "6m",
        STREAM,
        0,
        ["3m"],
    ),
    Case(
        "K2StreamNotCommitting",
        [
            ("k2_stream_last_commit_timestamp_seconds", STREAM, "60 120 180 180 180 180 180 180"),
            ("k2_ingest_trades_delivered_total", _binance("BTCUSDT"), "0+600x8"),
        ],
        "6m",
        STREAM,
        180,
        ["3m"],
        [
            ("k2_stream_last_commit_timestamp_seconds", STREAM, "60 120 180 180 180 180 180 180"),
            ("k2_ingest_trades_delivered_total", _binance("BTCUSDT"), "600x8"),
        ],
        "7m",
    ),
    Case(
        "K2StreamLagGrowing",
        [
            (
                "k2_stream_offset_lag",
                {**STREAM, "topic": "market.crypto.trades.binance.raw", "partition": "0"},
                "100000+10000x20",
            )
        ],
        "10m",
        {"topic": "market.crypto.trades.binance.raw"},
        200000,
        ["2m"],
        [
            (
                "k2_stream_offset_lag",
                {**STREAM, "topic": "market.crypto.trades.binance.raw", "partition": "0"},
                "200000x20",
            )
        ],
        "15m",
    ),
    Case(
        "K2GoldStale",
        [("k2_gold_freshness_seconds", {**STREAM, "exchange": "binance"}, "5 5 200 200 200 200")],
        "5m",
        {**STREAM, "exchange": "binance"},
        200,
        ["1m", "3m"],
    ),
    Case(
        "K2BuildMismatch",
        [
            ("k2_build_info", {**INGEST, "component": "ingest-binance", "git_sha": "a"}, "1x10"),
            ("k2_build_info", {**STREAM, "git_sha": "b"}, "1x10"),
        ],
        "7m",
        {},
        2,
        ["2m"],
        [
            ("k2_build_info", {**INGEST, "component": "ingest-binance", "git_sha": "a"}, "1x10"),
            ("k2_build_info", {**STREAM, "git_sha": "a"}, "1x10"),
        ],
        "7m",
    ),
    Case(
        "K2TargetDown",
        [
            ("up", STREAM, "1 1 0 0 0 0"),
            ("up", {"job": "prometheus", "instance": "127.0.0.1:9090"}, "0x6"),
        ],
        "4m",
        STREAM,
        0,
        ["2m"],
    ),
]


def _expected(rule: dict[str, Any], case: Case) -> dict[str, Any]:
    labels = {**case.labels, **rule["labels"]}
    annotations = {
        key: expand(text, case.labels, case.value) for key, text in rule["annotations"].items()
    }
    return {"exp_labels": labels, "exp_annotations": annotations}


def _test_group(series: list[tuple[str, dict[str, str], str]], checks: list[Any]) -> Any:
    return {
        "interval": "1m",
        "input_series": [{"series": _series(n, labels), "values": v} for n, labels, v in series],
        "alert_rule_test": checks,
    }


def _unit_tests(rules: dict[str, dict[str, Any]]) -> dict[str, Any]:
    tests = []
    for case in CASES:
        rule = rules[case.rule]
        checks = [{"eval_time": t, "alertname": case.rule, "exp_alerts": []} for t in case.quiet_at]
        checks.append(
            {
                "eval_time": case.fires_at,
                "alertname": case.rule,
                "exp_alerts": [_expected(rule, case)],
            }
        )
        tests.append(_test_group(case.series, checks))
        if case.quiet_series:
            quiet = [{"eval_time": case.quiet_series_at, "alertname": case.rule, "exp_alerts": []}]
            tests.append(_test_group(case.quiet_series, quiet))
    return {"rule_files": ["../rules/k2.yml"], "evaluation_interval": "5s", "tests": tests}


def rule_tests_text() -> str:
    """The promtool unit tests of every rule, as committed in deploy/prometheus/tests."""
    rules = {rule["alert"]: rule for rule in alert_rules()}
    return _TESTS_HEADER + dump_yaml(_unit_tests(rules))


def test_every_rule_fires_when_it_should_and_not_otherwise() -> None:
    """`promtool test rules` passes one firing and at least one quiet case for every rule."""
    assert {case.rule for case in CASES} == {rule["alert"] for rule in alert_rules()}
    assert RULE_TESTS.read_text() == rule_tests_text(), "regenerate: python -m " + __name__
    result = run_promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_has_a_severity_summary_and_description() -> None:
    """Each rule says how bad it is, what happened and what to do."""
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_every_metric_a_rule_reads_is_one_k2_defines() -> None:
    """No rule reads a metric name that no K2 service exports (a typo would never fire)."""
    families = k2_families()
    for rule in alert_rules():
        for name in metric_names(rule["expr"]) - {"up"}:
            assert family_of(name, families), f"{rule['alert']} reads unknown {name}"


def test_thresholds_come_from_the_settings() -> None:
    """Changing a K2_ALERTS__* or stream setting changes the generated rules."""
    settings = _defaults().model_copy(
        update={
            "alerts": AlertSettings(stale_symbol_s=42, commit_intervals=4),
            "stream": StreamSettings(trigger_interval_s=2.5),
        }
    )
    exprs = {
        rule["alert"]: rule["expr"]
        for group in rules_document(
            settings.alerts, settings.ingest, settings.stream, settings.prometheus
        )["groups"]
        for rule in group["rules"]
    }
    assert "> 42" in exprs["K2SymbolStale"]
    assert "> 10" in exprs["K2StreamNotCommitting"]


if __name__ == "__main__":
    RULE_TESTS.parent.mkdir(exist_ok=True)
    RULE_TESTS.write_text(rule_tests_text())
