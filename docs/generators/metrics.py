"""The metrics and alerts reference: every Prometheus metric of every K2 service, read from the
registries the services build (:mod:`k2.observability.metrics`, :mod:`k2.api.metrics`), and every
alert rule :mod:`k2.monitoring.alert_rules` writes for ``k2 deploy prometheus``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from generators.markdown import anchor, code, heading, page, prose, table
from k2.api.metrics import ApiMetrics
from k2.config import Settings
from k2.exchanges import EXCHANGE_NAMES
from k2.exchanges.factory import metrics_port
from k2.monitoring import alert_rules
from k2.monitoring.alert_rules import AlertRule, duration
from k2.observability.metrics import BookCounters, IngestMetrics, Metrics, StreamMetrics

# The suffix Prometheus' text format adds to the samples of each metric type.
_EXPOSED = {"counter": "_total", "info": "_info"}


@dataclass(frozen=True)
class MetricDoc:
    """One metric as a query names it, with its type, labels and help text."""

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str


def _labels(collector: Any, family: Any) -> tuple[str, ...]:
    """Label names of a metric: those it was declared with, then any its samples add (an info
    metric's keys). prometheus_client keeps the declared names in ``_labelnames``, on the metric
    (Counter, Gauge, ...) or on the family a custom collector builds at scrape time."""
    declared: tuple[str, ...] = tuple(
        getattr(family, "_labelnames", ()) or getattr(collector, "_labelnames", ())
    )
    sampled = (key for sample in family.samples for key in sample.labels if key != "le")
    return tuple(dict.fromkeys((*declared, *sampled)))


def metric_docs(registry: CollectorRegistry, skip: frozenset[str] = frozenset()) -> list[MetricDoc]:
    """Every metric of ``registry`` in the order it was registered, but those named in ``skip``."""
    docs = []
    # The registry has no public list of its collectors, and a family alone has no labels until
    # it has samples.
    for collector in list(registry._collector_to_names):
        for family in collector.collect():
            name = family.name + _EXPOSED.get(family.type, "")
            if name not in skip:
                labels = _labels(collector, family)
                docs.append(MetricDoc(name, family.type, labels, family.documentation))
    return docs


@dataclass(frozen=True)
class Service:
    """A kind of K2 process, where it serves ``/metrics``, and what it exports."""

    title: str
    where: str
    metrics: list[MetricDoc]


def services(settings: Settings) -> list[Service]:
    """The metrics of every kind of K2 process, each built as the process builds it; the
    metrics every process shares are listed once, first."""
    common = metric_docs(Metrics("any").registry)
    shared = frozenset(doc.name for doc in common)
    exchange = EXCHANGE_NAMES[0]
    ingest = Metrics(f"ingest-{exchange}")
    IngestMetrics(ingest, exchange)
    ingest.registry.register(BookCounters(exchange, dict))  # with the exchange's books on
    stream = Metrics("stream")
    StreamMetrics(stream)
    api = ApiMetrics(Metrics("api")).metrics
    ports = ", ".join(f"{name} {metrics_port(settings.ingest, name, 0)}" for name in EXCHANGE_NAMES)
    return [
        Service("Every service", "every process below", common),
        Service(
            "Ingest (`k2 ingest`)",
            f"one port per exchange ({ports}), see `K2_INGEST__METRICS_PORT`",
            metric_docs(ingest.registry, shared),
        ),
        Service(
            "Streaming job (`k2 job stream`)",
            f"port {settings.stream.metrics_port} (`K2_STREAM__METRICS_PORT`)",
            metric_docs(stream.registry, shared),
        ),
        Service(
            "HTTP API (`k2 api`)",
            f"the API's own port, {settings.api.port} (`K2_API__PORT`)",
            metric_docs(api.registry, shared),
        ),
    ]


def _service(service: Service) -> Iterator[str]:
    yield f"## {service.title}"
    yield f"Served on `/metrics` by {service.where}."
    yield table(
        ("metric", "type", "labels", "help"),
        (
            (code(doc.name), doc.kind, ", ".join(map(code, doc.labels)), doc.help)
            for doc in service.metrics
        ),
    )


def _rule(rule: AlertRule) -> Iterator[str]:
    yield heading(4, code(rule.name), rule.name)
    yield table(
        ("severity", "for", "summary"),
        [(rule.severity, code(duration(rule.for_s)), rule.summary)],
    )
    yield prose(rule.description)
    yield f"```promql\n{rule.expr}\n```"


def alerts(settings: Settings) -> Iterator[str]:
    """Every alert rule, one group of the rule file after the other."""
    thresholds = (settings.alerts, settings.ingest, settings.stream)
    document = alert_rules.rules_document(*thresholds, settings.prometheus)
    rules = {rule.name: rule for rule in alert_rules.alert_rules(*thresholds)}
    for group in document["groups"]:
        yield f"### Group `{group['name']}`"
        yield f"Evaluated every {code(group['interval'])}: " + ", ".join(
            f"[{code(entry['alert'])}](#{anchor(entry['alert'])})" for entry in group["rules"]
        )
        for entry in group["rules"]:
            yield from _rule(rules[entry["alert"]])


def metrics_page(settings: Settings) -> str:
    return page(
        "# Metrics and alerts",
        "Every Prometheus metric K2's services export and every alert rule "
        "`k2 deploy prometheus` writes, generated from the code when the site is built "
        "(metrics from the registries the services build, rules with the default thresholds). "
        "Counters are listed under the name queries use (with `_total`); a histogram also has "
        "its `_bucket`, `_sum` and `_count` series.",
        *(block for service in services(settings) for block in _service(service)),
        "## Alert rules",
        prose(alert_rules.__doc__).split("\n\n", 1)[-1],
        *alerts(settings),
    )
