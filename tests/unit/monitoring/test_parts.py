"""Two parts configured onto one port are refused before anything starts, naming both parts
and the setting to change."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from k2.cli.root import main
from k2.config import ApiSettings, IngestSettings, Settings, StreamSettings
from k2.errors import ConfigError
from k2.exchanges import EXCHANGES
from k2.monitoring.parts import check_part_ports, part_ports
from k2.run import supervisor


def _settings(**sections: Any) -> Settings:
    return Settings(_env_file=None, **sections)  # type: ignore[call-arg]


def _parts(
    settings: Settings,
) -> tuple[tuple[str, ...], IngestSettings, StreamSettings, ApiSettings]:
    """What the part ports are configured by: the exchanges, the ingest, stream and API."""
    return settings.exchanges, settings.ingest, settings.stream, settings.api


def test_the_default_ports_are_all_distinct() -> None:
    """One port per exchange from 9400 in the registry's order, the stream's next, the API's."""
    found = {part.part: part.port for part in part_ports(*_parts(_settings()))}
    ingests = {f"ingest-{name}": 9400 + index for index, name in enumerate(EXCHANGES)}
    assert found == {**ingests, "stream": 9400 + len(EXCHANGES), "api": 8000}
    check_part_ports(*_parts(_settings()))


def test_every_shard_of_every_exchange_is_checked() -> None:
    """Every shard of every exchange's ingest gets a port of its own, and a setting that makes one
    meet the stream's port is refused naming both."""
    settings = _settings(ingest={"shards_per_exchange": 3})
    names = [part.part for part in part_ports(*_parts(settings))]
    assert names[:3] == ["ingest-kraken-0", "ingest-kraken-1", "ingest-kraken-2"]
    check_part_ports(*_parts(settings))
    clash = _settings(ingest={"shards_per_exchange": 3}, stream={"metrics_port": 9421})
    with pytest.raises(ConfigError, match=r"ingest-binance-2 and stream .* port 9421"):
        check_part_ports(*_parts(clash))


def test_a_clash_is_one_line_naming_both_parts_and_the_setting() -> None:
    """Two parts configured on one port are one line naming both parts and the settings to
    change."""
    with pytest.raises(ConfigError) as caught:
        check_part_ports(*_parts(_settings(stream={"metrics_port": 9401})))
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        "ingest-binance and stream are both configured to serve on port 9401; change "
        "K2_STREAM__METRICS_PORT or K2_INGEST__METRICS_PORT"
    )
    with pytest.raises(ConfigError, match=r"ingest-kraken and api .* change K2_API__PORT"):
        check_part_ports(*_parts(_settings(api={"port": 9400})))


def test_ports_picked_at_start_never_clash() -> None:
    """Ports set to 0, picked when each part starts, are never counted as a clash."""
    check_part_ports(*_parts(_settings(ingest={"metrics_port": 0}, stream={"metrics_port": 0})))


def test_k2_run_refuses_a_clash_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`k2 run` refuses a port clash before it starts the stack or writes a log."""

    def no_stack(*args: object) -> None:
        raise AssertionError("the stack was started")

    monkeypatch.setattr(supervisor, "Stack", no_stack)
    settings = _settings(stack={"home": tmp_path}, stream={"metrics_port": 9400})
    console = supervisor.Console(lambda line: None)
    with pytest.raises(ConfigError, match="ingest-kraken and stream"):
        supervisor.run_pipeline(settings, "live", threading.Event(), console)
    assert not (tmp_path / "logs").exists()


def test_deploy_prometheus_names_the_clash_in_one_line(tmp_path: Path) -> None:
    """`k2 deploy prometheus` refuses a port clash in one line and writes no configuration."""
    env = {"K2_STREAM__METRICS_PORT": "9401", "K2_HOME": str(tmp_path)}
    result = CliRunner().invoke(main, ["deploy", "prometheus", "--output", str(tmp_path)], env=env)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "error: ingest-binance and stream are both configured to serve on port 9401; change "
        "K2_STREAM__METRICS_PORT or K2_INGEST__METRICS_PORT"
    ]
    assert not (tmp_path / "prometheus.yml").exists()
