"""Run the simulator as a process (``k2 simulate``): print where it listens, serve until stopped.

On start it prints one line per endpoint (``kraken_v1 ws://127.0.0.1:8765/`` ...) and, with
``urls_file``, writes the same as a JSON object (written to a temporary name and renamed, so a
process waiting for the file never reads half of it). SIGINT or SIGTERM stops it cleanly: every
connection gets a close frame and the ledger is closed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import signal
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from k2.errors import ConfigError
from k2.exchanges import EXCHANGES
from k2.simulator import exchanges
from k2.simulator.faults import FaultRule
from k2.simulator.server import Simulator
from k2.simulator.settings import SimulatorConfig


def _write_urls(path: Path, urls: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(urls, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


async def serve(
    config: SimulatorConfig, urls_file: Path | None, echo: Callable[[str], None]
) -> None:
    """Start, announce the URLs, and serve until SIGINT/SIGTERM."""
    # The histories are millions of small long-lived tuples: the default collector thresholds
    # re-scan them so often that at high rates half the process time went to garbage
    # collection. They hold no reference cycles, so collecting rarely loses nothing.
    gc.set_threshold(100_000, 50, 1_000)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Simulator(config) as sim:
        urls = sim.urls.as_dict()
        echo("K2 exchange simulator; point clients at:")
        for name, url in urls.items():
            echo(f"  {name:<13} {url}")
        ws_base = f"ws://{config.host}:{sim.port}"
        for name in EXCHANGES:
            for example, url in exchanges.server(name).examples(ws_base).items():
                echo(f"  {example:<13} {url}")
        if config.ledger_path is not None:
            echo(f"ledger: {config.ledger_path}")
        echo("press Ctrl-C to stop")
        if urls_file is not None:
            _write_urls(urls_file, {**urls, "ledger": str(config.ledger_path or "")})
        await stop.wait()


def run(config: SimulatorConfig, urls_file: str | None, echo: Callable[[str], None]) -> None:
    """Blocking entry point for the CLI."""
    asyncio.run(serve(config, None if urls_file is None else Path(urls_file), echo))


def build_config(options: Mapping[str, Any]) -> SimulatorConfig:
    """A :class:`SimulatorConfig` from options named like its fields and :class:`FaultRule`'s.

    The fault options of the command line make one rule; it is kept only if it asks for a fault
    (a protocol or connection count alone is not a fault). ``None`` means "the default".
    """
    rule_names = {item.name for item in fields(FaultRule)}
    config_names = {item.name for item in fields(SimulatorConfig)}
    unknown = set(options) - rule_names - config_names
    if unknown:
        raise ConfigError(f"unknown simulator option(s) {sorted(unknown)}")
    rule_values = {k: v for k, v in options.items() if k in rule_names and v not in (None, ())}
    rule = FaultRule(**rule_values)
    config_values = {k: v for k, v in options.items() if k in config_names and v is not None}
    if "replay" in config_values:
        config_values["replay"] = tuple(Path(path) for path in config_values["replay"])
    if "ledger_path" in config_values:
        config_values["ledger_path"] = Path(config_values["ledger_path"])
    if set(rule_values) - {"protocol", "connections"}:
        config_values["faults"] = (rule,)
    config = SimulatorConfig(**config_values)
    config.validate()
    return config
