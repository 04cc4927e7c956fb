"""``k2 api``: uvicorn serving the API on ``host:port``, in one or several processes.

With ``workers`` above one, this process binds the socket and forks that many servers that
accept on it (the settings travel with the fork, they are not read again); SIGTERM or Ctrl-C
reaches this process, which stops them and waits. Each server process keeps its own DuckDB
connections, lake refresh, live-stream consumer and rate-limit counters.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

import structlog

from k2.config import ApiSettings
from k2.errors import PortInUseError

log = structlog.get_logger(__name__)

# Builds the application in the process that serves it (each forked server builds its own: a
# forking parent never loads the app).
AppFactory = Callable[[], Any]

_STOP_TIMEOUT_S = 20.0


def _config(api: ApiSettings, app: AppFactory) -> Any:
    import uvicorn

    return uvicorn.Config(
        app(),
        host=api.host,
        port=api.port,
        log_config=None,  # K2's structlog set-up already handles uvicorn's loggers
        access_log=False,  # one INFO line per request is not a log, it is a metric
        ws_ping_interval=20.0,
        timeout_graceful_shutdown=5,
    )


def _serve_on(api: ApiSettings, app: AppFactory, sock: socket.socket) -> None:
    import uvicorn

    uvicorn.Server(_config(api, app)).run(sockets=[sock])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; :class:`PortInUseError` when it is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUseError(
            f"cannot listen on {host}:{port} ({exc.strerror}); stop what holds it or set "
            "K2_API__PORT"
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(api: ApiSettings, app: AppFactory, stop: threading.Event, on_ready: Any = None) -> None:
    """Serve the application ``app()`` builds (in each server process) on ``api.host`` and
    ``api.port`` until ``stop`` is set (Ctrl-C, SIGTERM); ``on_ready(port)`` once listening."""
    sock = bind(api.host, api.port)
    port = int(sock.getsockname()[1])
    log.info("api_listening", url=f"http://{api.host}:{port}", workers=api.workers)
    if on_ready is not None:
        on_ready(port)
    if api.workers == 1:
        _serve_in_thread(api, app, sock, stop)
        return
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_child, args=(api, app, sock), name=f"k2-api-{i}")
        for i in range(api.workers)
    ]
    for child in children:
        child.start()
    sock.close()
    while not stop.wait(0.5):
        if any(not child.is_alive() for child in children):
            log.error("api_worker_exited", exit_codes=[c.exitcode for c in children])
            break
    for child in children:
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)
    for child in children:
        child.join(_STOP_TIMEOUT_S)
        if child.is_alive():
            child.kill()
            child.join()


def _child(api: ApiSettings, app: AppFactory, sock: socket.socket) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us with SIGTERM
    _serve_on(api, app, sock)


def _serve_in_thread(
    api: ApiSettings, app: AppFactory, sock: socket.socket, stop: threading.Event
) -> None:
    import uvicorn

    server = uvicorn.Server(_config(api, app))
    # In a thread uvicorn leaves the signals alone: the CLI owns them (``stop``).
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
    )
    thread.start()
    while thread.is_alive() and not stop.wait(0.2):
        pass
    server.should_exit = True
    thread.join(_STOP_TIMEOUT_S)
    if thread.is_alive():  # a client that never lets go must not keep the process alive
        log.warning("api_stop_forced", waited_s=_STOP_TIMEOUT_S)
        server.force_exit = True
        thread.join(5)
    sock.close()
