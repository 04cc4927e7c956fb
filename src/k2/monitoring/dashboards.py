"""K2's Grafana dashboards and provisioning files, as code.

Two dashboards with fixed uids, so links and bookmarks survive re-provisioning: ``k2-overview``
(the whole pipeline) and ``k2-venue`` (one exchange, chosen with the ``exchange`` variable).
Every panel reads the Prometheus data source ``k2-prometheus`` that the provisioning file
declares. Counters K2 creates on their first event (gaps, dead letters, rejects, quarantine)
are written ``... or vector(0)`` so a healthy pipeline shows zero rather than "no data".
``k2 deploy grafana`` writes them; ``deploy/grafana`` holds what the default settings give.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k2.config import PrometheusSettings
from k2.monitoring.prometheus_config import dump_yaml

DATASOURCE_UID = "k2-prometheus"
OVERVIEW_UID = "k2-overview"
# Published (links, bookmarks, the dashboard's file name): it keeps the uid it shipped with.
EXCHANGE_UID = "k2-venue"
_DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
_WIDTH = 24
# Where the provisioning file tells Grafana to find the dashboards (Grafana's own convention).
GRAFANA_DASHBOARDS = "/var/lib/grafana/dashboards/k2"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def _q(expr: str, legend: str = "", instant: bool = False) -> Query:
    return Query(expr, legend, instant)


def _events(counter: str, by: str, window: str = "1h", where: str = "") -> str:
    """Events of a K2 counter over ``window`` by ``by``, zero when none happened yet."""
    return f"sum by ({by}) (increase({counter}{where}[{window}])) or vector(0)"


_LATENCY = "k2_ingest_delivery_latency_seconds_bucket"
# The overview: the whole pipeline, every exchange.
OVERVIEW_PANELS = (
    Panel(
        "Trades per second by exchange and symbol",
        (
            _q(
                "sum by (exchange, symbol) (rate(k2_ingest_trades_delivered_total[1m]))",
                "{{exchange}} {{symbol}}",
            ),
        ),
        "ops",
        description="Trades Kafka acknowledged, per second.",
    ),
    Panel(
        "Receive-to-acknowledged latency",
        (
            _q(
                f"histogram_quantile(0.5, sum by (exchange, le) (rate({_LATENCY}[5m])))",
                "p50 {{exchange}}",
            ),
            _q(
                f"histogram_quantile(0.99, sum by (exchange, le) (rate({_LATENCY}[5m])))",
                "p99 {{exchange}}",
            ),
        ),
        "s",
        description="From receiving a trade's frame to Kafka acknowledging its record.",
    ),
    Panel(
        "Gaps and unfilled trades (last hour)",
        (
            _q(_events("k2_ingest_gaps_total", "exchange"), "gaps {{exchange}}"),
            _q(
                _events("k2_ingest_gap_trades_unfilled_total", "exchange"),
                "unfilled trades {{exchange}}",
            ),
        ),
    ),
    Panel(
        "DLQ and Bronze rejects (last hour)",
        (
            _q(_events("k2_ingest_frames_dead_lettered_total", "exchange"), "DLQ {{exchange}}"),
            _q(_events("k2_bronze_rejects_total", "exchange, kind"), "{{exchange}} {{kind}}"),
        ),
    ),
    Panel(
        "Kafka lag of the streaming job",
        (_q("sum by (topic) (k2_stream_offset_lag)", "{{topic}}"),),
        description="Records in Kafka the job has not read yet, after its last micro-batch.",
    ),
    Panel(
        "Micro-batch durations",
        (
            _q(
                "histogram_quantile(0.95, sum by (le) "
                "(rate(k2_stream_batch_duration_seconds_bucket[5m])))",
                "batch p95",
            ),
            _q(
                "histogram_quantile(0.95, sum by (step, le) "
                "(rate(k2_stream_step_duration_seconds_bucket[5m])))",
                "{{step}} p95",
            ),
        ),
        "s",
    ),
    Panel(
        "Rows written per layer",
        (
            _q("sum(rate(k2_bronze_rows_written_total[1m]))", "bronze"),
            _q("sum(rate(k2_silver_rows_written_total[1m]))", "silver"),
            _q("sum(rate(k2_gold_rows_written_total[1m]))", "gold"),
        ),
        "rowsps",
    ),
    Panel(
        "Gold freshness per exchange",
        (_q("k2_gold_freshness_seconds", "{{exchange}}"),),
        "s",
        description="Age of the newest exchange_ts per exchange in gold.trades.",
    ),
    Panel(
        "Quarantined trades by reason (last hour)",
        (_q(_events("k2_silver_quarantined_total", "reason"), "{{reason}}"),),
    ),
    Panel(
        "Producer queue depth",
        (_q("k2_ingest_producer_queue_depth", "{{exchange}}"),),
        description="Records waiting for Kafka's acknowledgement.",
    ),
    Panel(
        "Build per service",
        (_q("k2_build_info", instant=True),),
        kind="table",
        width=_WIDTH,
        description="Version and git sha each service runs; two shas mean stale code.",
    ),
    Panel(
        "Scrape targets up",
        (_q('up{job=~"k2-.*"}', "{{component}}"),),
        width=_WIDTH,
    ),
)

_EX = '{exchange="$exchange"}'
# The drill-down: one exchange, chosen with the dashboard's variable.
EXCHANGE_PANELS = (
    Panel("Connected", (_q(f"k2_ingest_connected{_EX}", "{{instance}}"),)),
    Panel(
        "Trades per second by symbol",
        (
            _q(
                f"sum by (symbol) (rate(k2_ingest_trades_received_total{_EX}[1m]))",
                "received {{symbol}}",
            ),
            _q(
                f"sum by (symbol) (rate(k2_ingest_trades_delivered_total{_EX}[1m]))",
                "delivered {{symbol}}",
            ),
        ),
        "ops",
    ),
    Panel(
        "Age of the last trade by symbol",
        (_q(f"k2_ingest_last_trade_age_seconds{_EX}", "{{symbol}}"),),
        "s",
    ),
    Panel(
        "Latency quantiles",
        tuple(
            _q(
                f"histogram_quantile({q}, sum by (le) (rate({_LATENCY}{_EX}[5m])))",
                f"p{q * 100:g}",
            )
            for q in (0.5, 0.9, 0.99)
        ),
        "s",
    ),
    Panel(
        "Gaps, unfilled and backfilled trades by symbol (last hour)",
        (
            _q(_events("k2_ingest_gaps_total", "symbol", where=_EX), "gaps {{symbol}}"),
            _q(
                _events("k2_ingest_gap_trades_unfilled_total", "symbol", where=_EX),
                "unfilled {{symbol}}",
            ),
            _q(
                _events("k2_ingest_trades_backfilled_total", "symbol", where=_EX),
                "backfilled {{symbol}}",
            ),
        ),
    ),
    Panel(
        "Feed events by kind",
        (_q(f"sum by (kind) (rate(k2_ingest_feed_events_total{_EX}[1m]))", "{{kind}}"),),
        "ops",
    ),
    Panel(
        "Kafka failures and dead letters (last hour)",
        (
            _q(_events("k2_ingest_trades_failed_total", "symbol", where=_EX), "failed"),
            _q(_events("k2_ingest_frames_dead_lettered_total", "exchange", where=_EX), "DLQ"),
        ),
    ),
    Panel("Producer queue depth", (_q(f"k2_ingest_producer_queue_depth{_EX}"),)),
    Panel("Gold freshness", (_q(f"k2_gold_freshness_seconds{_EX}"),), "s"),
    Panel(
        "Rows into Bronze and Gold",
        (
            _q(f"sum(rate(k2_bronze_rows_written_total{_EX}[1m]))", "bronze"),
            _q(f"sum(rate(k2_gold_rows_written_total{_EX}[1m]))", "gold"),
        ),
        "rowsps",
    ),
)


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "refId": chr(ord("A") + index),
            "datasource": _DATASOURCE,
            "expr": query.expr,
            "legendFormat": query.legend,
            "instant": query.instant,
            "range": not query.instant,
            **({"format": "table"} if panel.kind == "table" else {}),
        }
        for index, query in enumerate(panel.queries)
    ]
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": _DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": 8},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": panel.options,
        "targets": targets,
    }


def _layout(panels: list[Panel]) -> list[dict[str, Any]]:
    """Panels left to right, two per row (full-width ones alone)."""
    out, x, y = [], 0, 0
    for panel_id, panel in enumerate(panels, start=1):
        if x + panel.width > _WIDTH:
            x, y = 0, y + 8
        out.append(_panel_json(panel, panel_id, x, y))
        x += panel.width
    return out


def dashboard(uid: str, title: str, panels: list[Panel], variables: list[Any]) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["k2"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": variables},
        "links": [
            {"title": "K2 overview", "type": "link", "url": f"/d/{OVERVIEW_UID}"},
            {"title": "K2 exchange", "type": "link", "url": f"/d/{EXCHANGE_UID}"},
        ],
        "panels": _layout(panels),
    }


def dashboards() -> dict[str, dict[str, Any]]:
    """File name → dashboard JSON."""
    exchange = {
        "name": "exchange",
        "label": "exchange",
        "type": "query",
        "datasource": _DATASOURCE,
        "query": {"query": "label_values(k2_ingest_connected, exchange)", "refId": "exchange"},
        "definition": "label_values(k2_ingest_connected, exchange)",
        "refresh": 2,
        "includeAll": False,
        "multi": False,
    }
    return {
        "k2-overview.json": dashboard(OVERVIEW_UID, "K2 overview", list(OVERVIEW_PANELS), []),
        "k2-venue.json": dashboard(EXCHANGE_UID, "K2 exchange", list(EXCHANGE_PANELS), [exchange]),
    }


def provisioning(
    prometheus: PrometheusSettings, host: str, dashboards_path: str
) -> dict[str, dict[str, Any]]:
    """Provisioning file (relative path) → content: the data source (the Prometheus on the
    stack's ``host``) and the dashboard folder."""
    url = f"http://{host}:{prometheus.port}"
    return {
        "provisioning/datasources/k2.yml": {
            "apiVersion": 1,
            "datasources": [
                {
                    "name": "K2 Prometheus",
                    "uid": DATASOURCE_UID,
                    "type": "prometheus",
                    "access": "proxy",
                    "url": url,
                    "isDefault": True,
                    "jsonData": {"timeInterval": f"{prometheus.scrape_interval_s:g}s"},
                }
            ],
        },
        "provisioning/dashboards/k2.yml": {
            "apiVersion": 1,
            "providers": [
                {
                    "name": "k2",
                    "folder": "K2",
                    "type": "file",
                    "disableDeletion": False,
                    "allowUiUpdates": False,
                    "options": {"path": dashboards_path},
                }
            ],
        },
    }


def write_grafana_files(
    prometheus: PrometheusSettings,
    host: str,
    folder: Path,
    dashboards_path: str = GRAFANA_DASHBOARDS,
) -> list[Path]:
    """Write the provisioning files and the dashboards into ``folder``; the paths written.

    The dashboard provider reads ``dashboards_path`` on the Grafana host: copy
    ``folder/dashboards`` there (or give the path it is mounted at).
    """
    written = []
    boards = folder / "dashboards"
    boards.mkdir(parents=True, exist_ok=True)
    for name, board in dashboards().items():
        path = boards / name
        path.write_text(json.dumps(board, indent=2) + "\n")
        written.append(path)
    for relative, document in provisioning(prometheus, host, dashboards_path).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_yaml(document))
        written.append(path)
    return written
