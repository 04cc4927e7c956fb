"""The running code's identity: package version and git sha, exported as ``k2_build_info``."""

from __future__ import annotations

import functools
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


@functools.cache
def k2_version() -> str:
    try:
        return version("k2")
    except PackageNotFoundError:
        return "0+unknown"


@functools.cache
def git_sha() -> str:
    """Short sha of the checkout the code runs from, ``unknown`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(_REPO), "rev-parse", "--short=12", "HEAD"],  # noqa: S607 - the git on PATH, if any
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"
