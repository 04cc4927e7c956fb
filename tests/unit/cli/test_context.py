"""What every command shares: a K2 error is one line on stderr and exit code 1."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from k2.cli import main


def test_cli_typo_is_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt K2_ variable makes any command print one line naming it and exit with code 1."""
    monkeypatch.setenv("K2_STACK__KAFKA_PROT", "1")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown setting(s) K2_STACK__KAFKA_PROT")
