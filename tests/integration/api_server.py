"""The API served by uvicorn on a free port in a thread, for tests that need a real socket
(a browser, WebSocket clients)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from k2.api.server import serve
from k2.config import Settings


class ApiServer:
    """``with ApiServer(settings) as url:`` serves until the block ends."""

    def __init__(self, settings: Settings) -> None:
        api = settings.api.model_copy(update={"port": 0})
        self.settings = settings.model_copy(update={"api": api})
        self._stop = threading.Event()
        self._port: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            serve(self.settings, self._stop, self._port.append)
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test
            self.error = exc

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._port and time.monotonic() < deadline and self.error is None:
            time.sleep(0.02)
        if not self._port:
            raise RuntimeError(f"the API did not start: {self.error}")
        url = f"http://127.0.0.1:{self._port[0]}"

        while time.monotonic() < deadline:  # lifespan done: the lake reader has refreshed
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code in (200, 503):
                    return url
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the API never answered /healthz")

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
