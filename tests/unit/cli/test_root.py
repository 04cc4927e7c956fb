"""The ``k2`` command's own behaviour, apart from what each command does."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from k2.cli import main

_PROBE = """
import subprocess, sys
def refuse(*args, **kwargs):
    raise AssertionError(f"--help ran a process: {args}")
subprocess.run = subprocess.Popen = subprocess.check_output = refuse
from k2.cli import main
try:
    main(["--help"], prog_name="k2")
except SystemExit as exc:
    assert exc.code == 0, exc.code
heavy = sorted(m for m in ("pyspark", "confluent_kafka", "duckdb", "pyiceberg") if m in sys.modules)
assert not heavy, heavy
"""


def test_help_runs_no_process_and_imports_no_engine() -> None:
    """`k2 --help` neither runs git nor imports Spark, Kafka, DuckDB or pyiceberg."""
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Usage: k2" in result.stdout


def test_version_names_the_git_sha() -> None:
    """`k2 --version` prints the version and the checkout's git sha."""
    result = subprocess.run(
        [sys.executable, "-m", "k2", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("k2 ")
    assert result.stdout.rstrip().endswith(")") and " (" in result.stdout
    printed = re.fullmatch(r"k2 (\S+) \(([0-9a-f]{7,40})\)\n", result.stdout)
    assert printed is not None, result.stdout
    here = str(Path(__file__).parent)  # inside the checkout the code runs from
    git = ["git", "-C", here, "rev-parse", "HEAD"]
    head = subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()
    assert printed.group(1) == version("k2")
    assert head.startswith(printed.group(2)), (printed.group(2), head)


def _commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    if isinstance(group, click.Group):
        for name, command in group.commands.items():
            found += _commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(main), ids=lambda p: " ".join(p) or "k2")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    """Every k2 command and group answers --help with a sentence saying what it does."""
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    # Every command explains itself in at least one sentence.
    assert len(result.output.split("\n\n")[1].strip()) > 10
