"""The hand-written pages and the README name only commands, options, settings, make targets and
files that exist."""

from __future__ import annotations

import re
import shlex

import click
import pytest

from k2.cli import main
from k2.config import unknown_env_vars
from k2.exchanges import EXCHANGE_NAMES
from tests.docs.conftest import DOCS, ROOT, written_pages

# A `k2` command line: in a code block after .venv/bin/, or a code span of its own; its words
# end where the shell's syntax begins (a comment, a pipe, a redirection, `)`).
_WORDS = r"""((?:[ \t]+(?:"[^"\n]*"|'[^'\n]*'|[^\s"'`)#|&;>\]\[]+))*)"""
_COMMANDS = (re.compile(r"\.venv/bin/k2" + _WORDS), re.compile(r"`k2" + _WORDS))
_SETTING = re.compile(r"\bK2_[A-Z0-9_]*(?:<EXCHANGE>[A-Z0-9_]*)?")
_MAKE = re.compile(r"\bmake ([a-z]+)\b")
_LINK = re.compile(r"\]\(([^)#:]+)(?:#[^)]*)?\)")


def _command_lines() -> list[tuple[str, list[str]]]:
    found = []
    for path, text in written_pages().items():
        for pattern in _COMMANDS:
            lines = (shlex.split(match.group(1)) for match in pattern.finditer(text))
            found.extend((path, words) for words in lines if words)
    return found


def _resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The (sub)command the words name, and the words after it."""
    command: click.Command = main
    while words and isinstance(command, click.Group) and words[0] in command.commands:
        command = command.commands[words[0]]
        words = words[1:]
    return command, words


def _options(command: click.Command) -> set[str]:
    return {"-h", "--help"} | {
        name for param in command.params for name in (*param.opts, *param.secondary_opts)
    }


def test_the_pages_show_k2_commands() -> None:
    """The command check has something to check: the pages show many `k2` command lines."""
    assert len(_command_lines()) > 50


@pytest.mark.parametrize(("path", "words"), _command_lines(), ids=lambda value: str(value))
def test_every_documented_command_and_option_exists(path: str, words: list[str]) -> None:
    """Each `k2 ...` line of the pages names a real command, and only options it has."""
    command, rest = _resolve(words)
    if isinstance(command, click.Group):
        assert not rest or rest[0].startswith("-"), f"{path}: no k2 command {' '.join(words)}"
    flags = {word.split("=")[0] for word in rest if word.startswith("-")}
    unknown = flags - _options(command)
    assert not unknown, f"{path}: `k2 {' '.join(words)}` has no option {sorted(unknown)}"


def test_every_documented_setting_exists() -> None:
    """Every K2_* name the pages mention is a setting (or a section of settings)."""
    unknown = set()
    for path, text in written_pages().items():
        for match in _SETTING.finditer(text):
            name = match.group(0).rstrip("_")
            names = [name.replace("<EXCHANGE>", exchange.upper()) for exchange in EXCHANGE_NAMES]
            unknown |= {f"{path}: {name}" for name in unknown_env_vars(dict.fromkeys(names, ""))}
    assert not unknown, sorted(unknown)


def test_every_documented_make_target_exists() -> None:
    """Every `make <target>` the pages mention is a target of the Makefile."""
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    named = {
        (path, target) for path, text in written_pages().items() for target in _MAKE.findall(text)
    }
    assert not {(path, target) for path, target in named if target not in targets}


def test_readme_links_reach_files() -> None:
    """The README's links lead to files of the checkout, so they work on a code host too."""
    readme = (ROOT / "README.md").read_text()
    links = [link for link in _LINK.findall(readme) if not link.startswith("http")]
    assert links
    assert [link for link in links if not (ROOT / link).is_file()] == []


def test_generated_pages_are_never_files() -> None:
    """The reference pages exist only in the built site: a copy in docs/ could go stale."""
    assert not (DOCS / "reference").exists()
