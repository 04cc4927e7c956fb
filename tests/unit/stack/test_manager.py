"""What the embedded stack runs: only the services the settings leave to K2."""

from __future__ import annotations

from pathlib import Path

from k2.config import KafkaSettings, PrometheusSettings, RegistrySettings, Settings, StackSettings
from k2.stack.manager import Stack


def _settings(tmp_path: Path, **sections: object) -> Settings:
    return Settings(
        stack=StackSettings(home=tmp_path),
        prometheus=PrometheusSettings(local="off"),
        _env_file=None,  # type: ignore[call-arg]
        **sections,  # type: ignore[arg-type]
    )


def test_by_default_k2_runs_its_own_broker_and_registry(tmp_path: Path) -> None:
    """Nothing configured elsewhere: the embedded broker and registry are K2's to start."""
    stack = Stack(_settings(tmp_path))
    assert [service.name for service in stack.services] == ["kafka", "registry"]
    assert stack.external == []


def test_services_configured_elsewhere_are_never_started_or_stopped(tmp_path: Path) -> None:
    """With the brokers and the registry pointed elsewhere, K2 starts neither (nor stops them
    on the way out) and says they are external."""
    stack = Stack(
        _settings(
            tmp_path,
            kafka=KafkaSettings(bootstrap_servers="b1:9092,b2:9092", replication_factor=3),
            registry=RegistrySettings(url="http://registry:8081"),
        )
    )
    assert stack.services == []
    assert stack.external == [("kafka", "b1:9092,b2:9092"), ("registry", "http://registry:8081")]
    assert stack.up() == [] and stack.down() == []
