"""Java discovery: a missing or too-old Java is one line naming the cause and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from k2.errors import JavaNotFoundError
from k2.stack.java import find_java, java_major_version


def _fake_jdk(root: Path, version_line: str) -> Path:
    java = root / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return root


def test_missing_java_home_names_setting(tmp_path: Path) -> None:
    """A missing Java is one line saying which Java is needed and which setting points at it."""
    with pytest.raises(JavaNotFoundError) as err:
        find_java(17, tmp_path / "nope", "K2_STACK__JAVA_HOME")
    message = str(err.value)
    assert "Java 17+ not found" in message and "(missing)" in message
    assert "K2_STACK__JAVA_HOME" in message and "\n" not in message


def test_too_old_java_is_named_with_its_version(tmp_path: Path) -> None:
    """A Java too old for Kafka and Spark is refused naming its version."""
    home = _fake_jdk(tmp_path / "jdk11", 'openjdk version "11.0.2" 2019-01-15')
    with pytest.raises(JavaNotFoundError, match=r"\(Java 11\)"):
        find_java(17, home, "K2_STACK__JAVA_HOME")


def test_legacy_version_string_is_parsed(tmp_path: Path) -> None:
    """A Java 8 style version string is read as its major version."""
    home = _fake_jdk(tmp_path / "jdk8", 'java version "1.8.0_292"')
    assert java_major_version(home / "bin" / "java") == 8


def test_good_java_is_returned(tmp_path: Path) -> None:
    """A recent enough Java is used, with its major version."""
    home = _fake_jdk(tmp_path / "jdk21", 'openjdk version "21.0.8" 2025-07-15')
    java, major = find_java(17, home, "K2_STACK__JAVA_HOME")
    assert (java, major) == (home / "bin" / "java", 21)
