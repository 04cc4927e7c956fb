"""``k2 run``: the whole pipeline on one machine, as far as it exists, until Ctrl-C.

It brings the embedded stack up (if it is not already), then starts one child process per part:
the simulator (with ``--source simulator``), one ingest per configured exchange, the streaming
job (every lakehouse layer) and the API (``k2 api``). Each child runs in its own session, so
Ctrl-C reaches only this supervisor, which then stops the children in data-flow order with one
SIGTERM each: ingests first (they flush to Kafka) and the API, then the streaming job (it
finishes its micro-batch), then the simulator, and finally the services of the stack it started
itself. A child that exits on its own stops the pipeline: its last error line is already on the
console, and the supervisor says which part stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog

from k2.config import Settings
from k2.errors import K2Error
from k2.stack.manager import Stack
from k2.transport.topics import TopicAdmin, k2_topics

log = structlog.get_logger(__name__)

_POLL_S = 0.5
_SIMULATOR_START_S = 60.0


@dataclass
class Part:
    name: str
    process: subprocess.Popen[bytes]
    stop_timeout_s: float


def _k2(*args: str) -> list[str]:
    return [sys.executable, "-m", "k2", *args]


def _start(name: str, args: list[str], env: dict[str, str], stop_timeout_s: float) -> Part:
    process = subprocess.Popen(_k2(*args), env=env, start_new_session=True)
    log.info("pipeline_part_started", part=name, pid=process.pid)
    return Part(name, process, stop_timeout_s)


def _wait_for_port(host: str, port: int, part: Part, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if part.process.poll() is not None:
            raise K2Error(f"the {part.name} exited before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise K2Error(f"the {part.name} did not listen on {host}:{port} within {timeout_s:.0f} s")


def run_pipeline(
    settings: Settings, source: str, stop: threading.Event, echo: Callable[[str], None]
) -> None:
    """Run until ``stop`` is set (or a part exits); raises K2Error naming a part that failed."""
    stack = Stack(settings)
    started_services = [name for name, now in stack.up() if now]
    TopicAdmin(settings).ensure(k2_topics(settings))
    env = {**os.environ, "K2_INGEST__SOURCE": source}
    parts: list[Part] = []
    failed: Part | None = None
    try:
        if source == "simulator":
            url = urlsplit(settings.ingest.simulator_url)
            host, port = url.hostname or "127.0.0.1", url.port or 80
            simulator = _start(
                "simulator", ["simulate", "--host", host, "--port", str(port)], env, 15.0
            )
            parts.append(simulator)
            _wait_for_port(host, port, simulator, _SIMULATOR_START_S)
        flush = settings.ingest.flush_timeout_s + 10.0
        for exchange in settings.exchanges:
            parts.append(
                _start(f"ingest-{exchange}", ["ingest", "--exchange", exchange], env, flush)
            )
        parts.append(_start("stream", ["job", "stream"], env, 120.0))
        parts.append(_start("api", ["api"], env, 30.0))
        echo(
            f"K2 runs: {', '.join(p.name for p in parts)} (source: {source}). "
            "Ctrl-C stops every part cleanly."
        )
        while not stop.is_set():
            failed = next((p for p in parts if p.process.poll() is not None), None)
            if failed is not None:
                break
            stop.wait(_POLL_S)
    finally:
        _stop_parts(parts)
        if started_services:
            stack.down()
    if failed is not None:
        raise K2Error(
            f"the {failed.name} stopped on its own (exit {failed.process.returncode}), so the "
            "pipeline was stopped; its `error:` line is above"
        )


def _stop_parts(parts: list[Part]) -> None:
    """Stop the ingests first, then the streaming job, then the simulator: the order data
    flows in."""
    stages = (
        [p for p in parts if p.name.startswith("ingest-") or p.name == "api"],
        [p for p in parts if p.name == "stream"],
        [p for p in parts if p.name == "simulator"],
    )
    for stage in stages:
        for part in stage:
            if part.process.poll() is None:
                part.process.send_signal(signal.SIGTERM)
        for part in stage:
            try:
                part.process.wait(part.stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.error("pipeline_part_killed", part=part.name, waited_s=part.stop_timeout_s)
                part.process.kill()
                part.process.wait()
            log.info("pipeline_part_stopped", part=part.name, exit_code=part.process.returncode)
