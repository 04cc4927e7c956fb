"""``k2 status``: every part of the running pipeline and where its data stands, in one snapshot."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from k2.config import LakeAccess, Settings
from k2.lake.catalog import lake_tables, open_catalog
from k2.ops.components import Component, Components, collect_components
from k2.ops.data import (
    BadRecords,
    SymbolFigures,
    TableFigures,
    TopicFigures,
    bad_records,
    symbol_figures,
    table_figures,
    topic_figures,
    unfilled_gaps,
)
from k2.stack.scrape import Scrape, scrape


@dataclass(frozen=True)
class Status:
    """What ``k2 status`` shows; :meth:`as_json` is its ``--json``."""

    home: str
    running: bool
    installed_version: str
    installed_sha: str
    components: list[Component]
    source: str | None = None  # the recorded run's source (live or simulator)
    symbols: list[SymbolFigures] = field(default_factory=list)
    topics: list[TopicFigures] = field(default_factory=list)
    tables: list[TableFigures] = field(default_factory=list)
    bad: BadRecords = field(default_factory=lambda: BadRecords(None, None, None))
    unreadable: list[str] = field(default_factory=list)  # sources that could not be read, why

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _guarded(what: str, unreadable: list[str], read: Any, default: Any) -> Any:
    """``read()``, or ``default`` with the reason noted: one source down never hides the rest."""
    try:
        return read()
    except Exception as exc:  # noqa: BLE001 - any failure of a source is shown, not raised
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        unreadable.append(f"{what}: {first[:200]}")
        return default


def _second_scrapes(components: Components, started: float, window_s: float) -> dict[str, Scrape]:
    """The ingests scraped again, at least ``window_s`` after the first, for their rates."""
    time.sleep(max(0.0, window_s - (time.monotonic() - started)))
    again = {}
    for item in components.items:
        if item.kind == "ingest" and item.up:
            found = scrape(f"http://{item.address}/metrics")
            if found is not None:
                again[item.name] = found
    return again


def collect_status(settings: Settings, rate_window_s: float = 1.0) -> Status:
    """Look at everything once. Nothing running → ``running`` False and only the components."""
    started = time.monotonic()
    components = collect_components(settings)
    home = str(settings.stack.state_dir)
    running = any(item.up for item in components.items)
    base = Status(
        home,
        running,
        components.installed_version,
        components.installed_sha,
        components.items,
        components.run.source if components.run else None,
    )
    if not running:
        return base
    unreadable: list[str] = []
    lake = settings.lake_access()
    kafka = settings.kafka_config()
    topic_prefix = settings.kafka.topic_prefix
    prefix = settings.lake.namespace_prefix
    catalog = _guarded("catalog", unreadable, lambda: _open_catalog(lake), None)
    topics, dlq = _guarded(
        "kafka",
        unreadable,
        lambda: topic_figures(kafka, settings.exchanges, topic_prefix, prefix, catalog),
        ([], None),
    )
    registry = settings.registry_config()
    gaps = _guarded(
        "gap events", unreadable, lambda: unfilled_gaps(kafka, registry, topic_prefix), {}
    )
    now = datetime.now(UTC)
    tables = []
    if catalog is not None:
        for identifier in _guarded("catalog", unreadable, lambda: lake_tables(catalog, prefix), []):
            figures = _guarded(
                identifier, unreadable, lambda i=identifier: table_figures(catalog, i, now), None
            )
            if figures is not None:
                tables.append(figures)
    ingests = {n: s for n, s in components.scrapes.items() if n.startswith("ingest")}
    later = _second_scrapes(components, started, rate_window_s)
    return replace(
        base,
        symbols=symbol_figures(ingests, later, gaps),
        topics=topics,
        tables=tables,
        bad=bad_records(tables, dlq),
        unreadable=unreadable,
    )


def _open_catalog(lake: LakeAccess) -> Any:
    return open_catalog(lake)
