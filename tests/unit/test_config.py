"""Settings: typos fail at start-up, secrets never print, derived addresses follow the stack."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from k2.cli import main
from k2.config import KafkaSettings, load_settings, masked_dump, unknown_env_vars
from k2.errors import ConfigError


def test_unknown_k2_variable_is_a_startup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K2_KAFKA__BOOTSTRAP_SERVER", "broker:9092")  # missing S
    with pytest.raises(ConfigError, match="K2_KAFKA__BOOTSTRAP_SERVER"):
        load_settings()


def test_known_nested_variables_are_accepted() -> None:
    env = {"K2_KAFKA__BOOTSTRAP_SERVERS": "x:1", "K2_HOME": "/tmp/x", "K2_STACK__KAFKA_PORT": "1"}
    assert unknown_env_vars(env) == []


def test_invalid_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K2_KAFKA__TOPIC_PARTITIONS", "zero")
    with pytest.raises(ConfigError, match=r"kafka\.topic_partitions"):
        load_settings()


def test_unknown_exchange_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K2_EXCHANGES", '["kraken", "krakken"]')
    with pytest.raises(ConfigError, match="krakken"):
        load_settings()


def test_k2_home_moves_every_derived_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("K2_HOME", str(tmp_path))
    monkeypatch.setenv("K2_STACK__KAFKA_PORT", "19092")
    settings = load_settings()
    assert settings.stack.state_dir == tmp_path.resolve()
    assert settings.stack.kafka_port == 19092
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.catalog_uri.startswith(f"jdbc:sqlite:{tmp_path.resolve()}/lake/k2.db")
    assert settings.warehouse == str(tmp_path.resolve() / "lake" / "warehouse")


def test_secrets_are_masked_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K2_KAFKA__SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("K2_LAKE__CATALOG_PASSWORD", "s3cret")
    settings = load_settings()
    dumped = json.dumps(masked_dump(settings))
    assert "hunter2" not in dumped and "s3cret" not in dumped
    assert "hunter2" not in repr(settings)
    assert settings.kafka_config()["sasl.password"] == "hunter2"


def test_config_show_prints_masked_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K2_KAFKA__SASL_PASSWORD", "hunter2")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["kafka"]["sasl_password"] == "**********"
    assert shown["effective"]["kafka_bootstrap"] == "127.0.0.1:9092"


def test_cli_typo_is_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K2_STACK__KAFKA_PROT", "1")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown setting(s) K2_STACK__KAFKA_PROT")


def _commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    if isinstance(group, click.Group):
        for name, command in group.commands.items():
            found += _commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(main), ids=lambda p: " ".join(p) or "k2")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    # Every command explains itself in at least one sentence.
    assert len(result.output.split("\n\n")[1].strip()) > 10


def test_a_topic_replicated_three_times_needs_two_replicas_in_sync() -> None:
    """On a cluster of three, an acknowledged record survives one broker lost; alone, one."""
    assert KafkaSettings().min_insync == 1
    assert KafkaSettings(replication_factor=3).min_insync == 2
    assert KafkaSettings(replication_factor=3, min_insync_replicas=3).min_insync == 3
    with pytest.raises(ValueError, match="exceeds replication_factor"):
        KafkaSettings(replication_factor=1, min_insync_replicas=2)
