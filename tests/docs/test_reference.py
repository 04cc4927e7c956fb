"""The generated reference pages list everything the code defines: every setting, table, metric,
alert rule and API route."""

from __future__ import annotations

import re
from types import ModuleType

import pytest

from k2.api.app import create_app
from k2.config import ENV_PREFIX, NESTED_DELIMITER, ApiSettings, Settings, _known_env_names
from k2.jobs.layout import layout
from k2.monitoring.alert_rules import alert_rules
from tests.docs.conftest import ROOT

_TABLE_NAME = re.compile(r"^\| `(K2_[A-Z0-9_]+)` \|", re.MULTILINE)


def _defaults() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_settings_page_lists_every_setting_once(generated_pages: dict[str, str]) -> None:
    """Each variable a setting reads has one row; a section (K2_API) is a heading, not a row."""
    known = _known_env_names(Settings, ENV_PREFIX)
    sections = {
        name for name in known if any(other.startswith(name + NESTED_DELIMITER) for other in known)
    }
    rows = _TABLE_NAME.findall(generated_pages["reference/settings.md"])
    assert sorted(rows) == sorted(known - sections)


def test_settings_page_names_no_path_of_this_machine(generated_pages: dict[str, str]) -> None:
    """A default path inside the checkout is shown relative to it, never as this machine's."""
    assert str(ROOT) not in generated_pages["reference/settings.md"]


def test_pages_show_defaults_whatever_the_environment(
    generators: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings the pages are built with ignore K2_* variables of the machine that builds
    them."""
    monkeypatch.setenv("K2_API__PORT", "1234")
    assert generators.default_settings().api.port == ApiSettings().port


def test_tables_page_has_every_table(generated_pages: dict[str, str]) -> None:
    """Every table the streaming job writes, the book tables of every exchange among them, has a
    section with its columns."""
    settings = _defaults()
    ingest = settings.ingest
    for exchange in settings.exchanges:
        ingest = ingest.with_exchange(exchange, books=True)
    plan = layout(settings.model_copy(update={"ingest": ingest}))
    tables = [
        *(name for source in plan.sources for name in (source.table, source.rejects)),
        *plan.silver.values(),
        plan.book_changes,
        plan.quarantine,
        plan.gold,
        *plan.bars.values(),
        plan.gaps,
    ]
    page = generated_pages["reference/tables.md"]
    assert [table for table in tables if f"### `{table}`" not in page] == []


def test_metrics_page_has_every_metric_and_alert(generated_pages: dict[str, str]) -> None:
    """Every metric name the metric definitions hold, and every alert rule, is on the page."""
    sources = [ROOT / "src/k2/observability/metrics.py", ROOT / "src/k2/api/metrics.py"]
    names = {
        name for path in sources for name in re.findall(r'"(k2_[a-z0-9_]+)"', path.read_text())
    }
    page = generated_pages["reference/metrics.md"]
    assert len(names) > 40
    assert sorted(name for name in names if f"`{name}" not in page) == []
    defaults = _defaults()
    assert [
        rule.name
        for rule in alert_rules(defaults.alerts, defaults.ingest, defaults.stream)
        if f"#### `{rule.name}`" not in page
    ] == []


def test_api_page_has_every_route(generated_pages: dict[str, str]) -> None:
    """Every route of the application, HTTP and WebSocket, has a section; the OpenAPI document
    is published beside it."""
    app = create_app(_defaults(), reader=object())  # type: ignore[arg-type]
    page = generated_pages["reference/api.md"]
    paths = {route.path for route in app.routes if hasattr(route, "path")}
    shown = re.findall(r"`(?:GET|POST|WS) ([^` ]+?)(?:/\.\.\.)?`", page)
    assert sorted(paths - set(shown)) == []
    assert '"openapi"' in generated_pages["reference/openapi.json"]
