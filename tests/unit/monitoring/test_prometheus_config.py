"""Prometheus's configuration from the settings: the committed files are what the defaults
generate, promtool accepts them, and every service is a scrape target at its port."""

from __future__ import annotations

from pathlib import Path

import yaml

from k2.config import Settings
from k2.monitoring.prometheus_config import (
    prometheus_document,
    scrape_targets,
    write_prometheus_files,
)
from tests.monitoring import CONFIG, RULES, alert_rules, run_promtool


def _defaults() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_committed_files_are_what_the_default_settings_generate(tmp_path: Path) -> None:
    """deploy/prometheus holds exactly what `k2 deploy prometheus` writes for the defaults."""
    config, rules = write_prometheus_files(_defaults(), tmp_path)
    assert config.read_text() == CONFIG.read_text()
    assert rules.read_text() == RULES.read_text()


def test_promtool_accepts_the_config_and_the_rules() -> None:
    """`promtool check config` and `promtool check rules` pass on the committed files."""
    checked = run_promtool("check", "config", str(CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    checked = run_promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(alert_rules())} rules found" in checked.stdout


def test_the_scrape_config_names_every_service_at_its_port() -> None:
    """One scrape target per exchange's ingest and one for the streaming job, at their ports."""
    settings = _defaults()
    services = scrape_targets(
        settings.stack.host, settings.exchanges, settings.ingest, settings.stream, settings.api
    )
    document = prometheus_document(settings.prometheus, services)
    targets = {
        static["labels"]["component"]: static["targets"][0]
        for job in document["scrape_configs"]
        for static in job["static_configs"]
    }
    assert targets == {
        "ingest-kraken": "127.0.0.1:9400",
        "ingest-binance": "127.0.0.1:9401",
        "ingest-coinbase": "127.0.0.1:9402",
        "ingest-okx": "127.0.0.1:9403",
        "ingest-bybit": "127.0.0.1:9404",
        "stream": "127.0.0.1:9405",
    }
    assert yaml.safe_load(CONFIG.read_text())["rule_files"] == ["rules/k2.yml"]
