"""`k2 config show` prints the settings as JSON, secrets masked."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from k2.cli import main


def test_config_show_prints_masked_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """`k2 config show` prints the settings as JSON with secrets masked and the addresses they
    derive."""
    monkeypatch.setenv("K2_KAFKA__SASL_PASSWORD", "hunter2")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["kafka"]["sasl_password"] == "**********"
    assert shown["effective"]["kafka_bootstrap"] == "127.0.0.1:9092"
