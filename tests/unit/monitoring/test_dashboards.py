"""The Grafana dashboards and provisioning, checked as files (no Grafana server runs here): what
`k2 deploy grafana` writes, fixed uids, a valid layout, and queries over metrics K2 defines."""

from __future__ import annotations

from pathlib import Path

import yaml

from k2.config import Settings
from k2.monitoring.dashboards import DATASOURCE_UID, EXCHANGE_UID, OVERVIEW_UID, write_grafana_files
from tests.monitoring import DEPLOY, dashboards, family_of, k2_families, metric_names, panel_queries


def test_committed_files_are_what_the_default_settings_generate(tmp_path: Path) -> None:
    """deploy/grafana holds exactly what `k2 deploy grafana` writes for the defaults."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    for path in write_grafana_files(settings.prometheus, settings.stack.host, tmp_path):
        committed = DEPLOY / "grafana" / path.relative_to(tmp_path)
        assert committed.read_text() == path.read_text(), committed


def test_dashboards_have_fixed_unique_uids_and_titles() -> None:
    """The overview and the per-exchange drill-down keep their uids across provisioning."""
    boards = dashboards()
    assert {board["uid"] for board in boards.values()} == {OVERVIEW_UID, EXCHANGE_UID}
    assert all(board["title"] and board["schemaVersion"] >= 36 for board in boards.values())


def test_panels_are_laid_out_on_the_grid_and_read_the_provisioned_source() -> None:
    """Each panel has a unique id, fits the 24-column grid, and queries the K2 data source."""
    for name, board in dashboards().items():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel
            assert panel["datasource"]["uid"] == DATASOURCE_UID
            refs = [target["refId"] for target in panel["targets"]]
            assert refs and len(refs) == len(set(refs)), panel["title"]
            assert all(target["expr"].strip() for target in panel["targets"])


def test_every_panel_reads_metrics_k2_defines() -> None:
    """No panel queries a metric name no K2 service exports."""
    families = k2_families()
    for board in dashboards().values():
        for title, expr in panel_queries(board):
            names = metric_names(expr)
            assert names, (title, expr)
            for name in names - {"up"}:
                assert family_of(name, families), f"{title}: unknown metric {name}"


def test_the_exchange_dashboard_filters_by_its_exchange_variable() -> None:
    """Every query of the drill-down is narrowed to the chosen exchange."""
    board = dashboards()["k2-venue.json"]
    assert [v["name"] for v in board["templating"]["list"]] == ["exchange"]
    for title, expr in panel_queries(board):
        assert 'exchange="$exchange"' in expr, title


def test_provisioning_declares_the_source_and_the_dashboard_folder() -> None:
    """The data source has the uid the panels use; the provider loads the dashboards folder."""
    provisioning = DEPLOY / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "k2.yml").read_text())
    assert [s["uid"] for s in source["datasources"]] == [DATASOURCE_UID]
    assert source["datasources"][0]["type"] == "prometheus"
    provider = yaml.safe_load((provisioning / "dashboards" / "k2.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    assert provider["providers"][0]["options"]["path"]
