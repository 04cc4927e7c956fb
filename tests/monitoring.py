"""What the monitoring tests share: K2's deploy files, the metrics they read, promtool helpers."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from k2.observability.metrics import BookCounters, IngestMetrics, Metrics, StreamMetrics

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "k2.yml"
CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"

_IDENTIFIER = re.compile(r"\b(k2_[a-z0-9_]+|up)\b")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "info": ("_info",)}


def promtool() -> str:
    """The promtool binary (Debian's prometheus package, installed by `make sysdeps`)."""
    found = shutil.which("promtool")
    assert found, "promtool is missing: run `make sysdeps` (Debian's prometheus package)"
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of the committed rule file."""
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panel_queries(board: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every query of every panel."""
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (K2's, and ``up``)."""
    return set(_IDENTIFIER.findall(expr))


def family_of(sample: str, families: Mapping[str, str]) -> str | None:
    """The metric family a sample name belongs to, given family name → type."""
    for family, kind in families.items():
        if sample == family or sample in {family + s for s in _SUFFIXES.get(kind, ())}:
            return family
    return None


def k2_families() -> dict[str, str]:
    """Family name → type of every metric K2 defines (ingest, book capture, streaming job)."""
    metrics = Metrics("probe")
    IngestMetrics(metrics, "kraken")
    metrics.registry.register(BookCounters("kraken", dict))
    StreamMetrics(metrics)
    return {family.name: family.type for family in metrics.registry.collect()}


def humanize_duration(value: float) -> str:
    """Prometheus's ``humanizeDuration`` template function."""
    if math.isclose(value, 0) or abs(value) >= 1:
        seconds = int(value)
        days, hours = seconds // 86400, seconds // 3600 % 24
        minutes, rest = seconds // 60 % 60, seconds % 60
        if days:
            return f"{days}d {hours}h {minutes}m {rest}s"
        if hours:
            return f"{hours}h {minutes}m {rest}s"
        if minutes:
            return f"{minutes}m {rest}s"
        return f"{value:.4g}s"
    return f"{value * 1000:.4g}ms"


def expand(template: str, labels: Mapping[str, str], value: float) -> str:
    """An annotation as Prometheus renders it, for the template forms K2's rules use."""
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), template)
    text = text.replace("{{ $value | humanizeDuration }}", humanize_duration(value))
    return text.replace("{{ $value }}", f"{value:g}")
