"""`k2 status` with nothing running says how to start, in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from k2.cli.output import not_running_line


def test_status_with_nothing_running_is_one_line(tmp_path: Path) -> None:
    """`k2 status` in an empty K2_HOME prints one line that says how to start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("K2_")}
    env.update({"K2_HOME": str(tmp_path), "K2_PROMETHEUS__LOCAL": "off"})
    env.update({"K2_INGEST__SIMULATOR_URL": "http://127.0.0.1:9", "K2_INGEST__METRICS_PORT": "9"})
    env["K2_STREAM__METRICS_PORT"] = "8"  # below the ingests', which take 9 onwards
    done = subprocess.run(
        [sys.executable, "-m", "k2", "status"], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [not_running_line(str(tmp_path.resolve()))]
    assert "make run" in done.stdout
