"""What benchmarks run against: a private embedded stack, and the simulator as its own process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from unittest import mock

from k2.config import Settings, StackSettings
from k2.exchanges import EXCHANGES
from k2.stack.ports import free_port


def private_settings(home: Path) -> Settings:
    """Settings for a stack of its own in ``home`` (broker heap 1g), on free ports."""
    stack = StackSettings(
        home=home,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        registry_port=free_port(),
        registry_management_port=free_port(),
        kafka_heap="1g",
        start_timeout_s=180,
    )
    return Settings(stack=stack, _env_file=None)  # type: ignore[call-arg]


def start_simulator(
    rate: int, kraken: str | None, binance: str | None, retention: int, workdir: Path, *extra: str
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """``k2 simulate`` on a free port; the process and its URLs (read from its URLs file).

    ``kraken`` and ``binance`` are the comma-separated symbols to list ("" lists none, None the
    exchange's whole universe), every other exchange lists none unless ``extra`` names its symbols;
    ``extra`` are further ``k2 simulate`` options.
    """
    urls_file = workdir / f"urls-{time.monotonic_ns()}.json"
    command = [
        sys.executable, "-m", "k2", "simulate", "--port", "0", "--rate", str(rate),
        "--retention", str(retention), "--urls-file", str(urls_file), *extra,
    ]  # fmt: skip
    listed = {"kraken": kraken, "binance": binance}
    for name in EXCHANGES:
        symbols = listed.get(name, "")
        if symbols is not None and f"--{name}-symbols" not in extra:
            command += [f"--{name}-symbols", symbols]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not urls_file.exists():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("the simulator did not start")
        time.sleep(0.05)
    urls: dict[str, str] = json.loads(urls_file.read_text())
    return process, urls


def settings_from(env: Mapping[str, str], home: Path) -> Settings:
    """The settings a K2 process started with ``env`` (K2_* variables) and ``home`` reads."""
    with mock.patch.dict("os.environ", {k: v for k, v in env.items() if k.startswith("K2_")}):
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return settings.model_copy(update={"stack": StackSettings(home=home)})
