"""Settings: typos fail at start-up, secrets never print, derived addresses follow the stack, and
the API listens on loopback with no key unless told otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from k2.api.security import hash_key
from k2.config import (
    KafkaSettings,
    Settings,
    load_settings,
    masked_dump,
    revised,
    unknown_env_vars,
)
from k2.errors import ConfigError


def test_unknown_k2_variable_is_a_startup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt K2_ variable stops start-up naming it, instead of being silently ignored."""
    monkeypatch.setenv("K2_KAFKA__BOOTSTRAP_SERVER", "broker:9092")  # missing S
    with pytest.raises(ConfigError, match="K2_KAFKA__BOOTSTRAP_SERVER"):
        load_settings()


def test_known_nested_variables_are_accepted() -> None:
    """Every real K2_ variable, nested sections included, is accepted."""
    env = {"K2_KAFKA__BOOTSTRAP_SERVERS": "x:1", "K2_HOME": "/tmp/x", "K2_STACK__KAFKA_PORT": "1"}
    assert unknown_env_vars(env) == []


def test_invalid_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value that is not valid stops start-up naming the setting it was meant for."""
    monkeypatch.setenv("K2_KAFKA__TOPIC_PARTITIONS", "zero")
    with pytest.raises(ConfigError, match=r"kafka\.topic_partitions"):
        load_settings()


def test_unknown_exchange_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exchange K2 does not know stops start-up naming it."""
    monkeypatch.setenv("K2_EXCHANGES", '["kraken", "krakken"]')
    with pytest.raises(ConfigError, match="krakken"):
        load_settings()


def test_k2_home_moves_every_derived_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """K2_HOME moves the state folder, the catalog and the warehouse with it, and a changed broker
    port moves the bootstrap address."""
    monkeypatch.setenv("K2_HOME", str(tmp_path))
    monkeypatch.setenv("K2_STACK__KAFKA_PORT", "19092")
    settings = load_settings()
    assert settings.stack.state_dir == tmp_path.resolve()
    assert settings.stack.kafka_port == 19092
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.catalog_uri.startswith(f"jdbc:sqlite:{tmp_path.resolve()}/lake/k2.db")
    assert settings.warehouse == str(tmp_path.resolve() / "lake" / "warehouse")


def test_secrets_are_masked_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords never appear in the settings as shown or logged, yet reach the Kafka client as
    given."""
    monkeypatch.setenv("K2_KAFKA__SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("K2_LAKE__CATALOG_PASSWORD", "s3cret")
    settings = load_settings()
    dumped = json.dumps(masked_dump(settings))
    assert "hunter2" not in dumped and "s3cret" not in dumped
    assert "hunter2" not in repr(settings)
    assert settings.kafka_config()["sasl.password"] == "hunter2"


def test_a_topic_replicated_three_times_needs_two_replicas_in_sync() -> None:
    """On a cluster of three, an acknowledged record survives one broker lost; alone, one."""
    assert KafkaSettings().min_insync == 1
    assert KafkaSettings(replication_factor=3).min_insync == 2
    assert KafkaSettings(replication_factor=3, min_insync_replicas=3).min_insync == 3
    with pytest.raises(ValueError, match="exceeds replication_factor"):
        KafkaSettings(replication_factor=1, min_insync_replicas=2)


def test_api_binds_loopback_with_no_keys_by_default() -> None:
    """Out of the box the API listens on 127.0.0.1 only and needs no key."""
    api = Settings(_env_file=None).api  # type: ignore[call-arg]
    assert (api.host, api.port, api.workers, api.key_hashes) == ("127.0.0.1", 8000, 1, ())


def test_key_digests_come_from_the_environment_and_are_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """K2_API__KEY_HASHES is read as a list and never shown by `k2 config show`."""
    digest = hash_key("s3cret")
    monkeypatch.setenv("K2_API__KEY_HASHES", json.dumps([digest]))
    monkeypatch.setenv("K2_API__MAX_PAGE_SIZE", "500")
    settings = load_settings(_env_file=None)
    assert settings.api.key_hashes[0].get_secret_value() == digest
    assert settings.api.max_page_size == 500
    assert digest not in json.dumps(masked_dump(settings))


def test_a_revised_copy_is_validated_like_new_settings() -> None:
    """An override given to a copy of the settings (a CLI flag, the source of a run) is checked as
    a setting in the environment would be: a bad value is refused, not carried silently."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        revised(settings.api, port=-1)
    with pytest.raises(ValidationError):
        revised(settings, api={"port": "not a port"})
    changed = revised(settings, api=revised(settings.api, port=8123))
    assert changed.api.port == 8123 and settings.api.port != 8123
    assert changed.kafka == settings.kafka
