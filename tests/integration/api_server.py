"""The API served by uvicorn on a free port in a thread, for tests that need a real socket
(a browser, WebSocket clients)."""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

import httpx

from k2.api.app import create_app
from k2.api.server import serve
from k2.config import Settings
from tests.polling import Pending, wait_until

START_S = 30.0  # how long the API may take to listen and then to answer /healthz


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
            serve(
                self.settings.api,
                functools.partial(create_app, self.settings),
                self._stop,
                self._port.append,
            )
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test
            self.error = exc

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + START_S

        def listening() -> bool:
            assert self.error is None, f"the API did not start: {self.error!r}"
            return bool(self._port)

        wait_until(listening, START_S, "the API to listen", every_s=0.02)
        url = f"http://127.0.0.1:{self._port[0]}"

        def answering() -> bool | Pending:  # lifespan done: the lake reader has refreshed
            try:
                status = httpx.get(f"{url}/healthz", timeout=2).status_code
            except httpx.HTTPError as exc:
                return Pending(repr(exc))
            return status in (200, 503) or Pending(f"HTTP {status}")

        left = max(0.0, deadline - time.monotonic())
        wait_until(answering, left, "the API to answer /healthz", every_s=0.05)
        return url

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
