"""The simulator in tests: its settings, a scenario run against it, the simulator on a thread of
its own, and what a WebSocket client receives from it.

The simulator shares its trade rate among every symbol it lists, on every exchange of the
registry, and an exchange's symbols default to its whole universe; so a test's simulator starts
from :func:`unlisted`, lists only the symbols the test names, and a new exchange in the registry
neither slows its trades nor adds hundreds of symbols to it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import websockets

from k2.exchanges import EXCHANGES
from k2.simulator.server import Simulator
from k2.simulator.settings import SimulatorConfig

T = TypeVar("T")


def unlisted() -> dict[str, tuple[str, ...]]:
    """``<exchange>_symbols`` of every exchange in the registry, each listing nothing."""
    return {f"{name}_symbols": () for name in EXCHANGES}


def simulator_configs(**defaults: Any) -> Callable[..., SimulatorConfig]:
    """A test module's simulator settings, ``config(tmp_path, **changes)``: ``defaults``, then
    each test's ``changes``.

    Only the symbols named (``<exchange>_symbols``) are listed, and the ledger is
    ``<tmp_path>/ledger.jsonl`` unless a test says otherwise.
    """

    def config(tmp_path: Path, **changes: Any) -> SimulatorConfig:
        ledger = {"ledger_path": tmp_path / "ledger.jsonl"}
        return SimulatorConfig(**{**unlisted(), **ledger, **defaults, **changes})

    return config


class SimulatorThread:
    """The simulator on its own event loop in a thread, so a subprocess can feed from it."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self._ready: Future[Simulator] = Future()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        try:
            async with Simulator(self.config) as sim:
                self._ready.set_result(sim)
                await self._stop.wait()
        except Exception as exc:  # surfaced to the test through the future
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def __enter__(self) -> Simulator:
        self._thread.start()
        return self._ready.result(timeout=30)

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the simulator's loop (its methods are not thread-safe)."""

        async def wrapped() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=10)


def run_scenario(main: Callable[[], Awaitable[T]], timeout: float = 20) -> T:
    """Run ``main`` (a test's scenario against the simulator) on a new event loop, failing it
    after ``timeout`` seconds so a frame that never comes ends the test, never hangs it."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), timeout)

    return asyncio.run(bounded())


async def collect(ws: Any, seconds: float) -> list[Any]:
    """Every message (JSON) the simulator sends on ``ws`` within ``seconds``, or until it ends
    the connection."""
    messages = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
        except (TimeoutError, websockets.ConnectionClosed):
            break
    return messages


async def closed_within(ws: Any, seconds: float) -> bool:
    """True if the simulator ends the connection within ``seconds`` (messages meanwhile
    ignored)."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed:
        return True
    except TimeoutError:
        return False
