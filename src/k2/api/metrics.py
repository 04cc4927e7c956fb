"""The API's Prometheus metrics (requests and latencies by route, live clients, ``k2_build_info``)
and the ASGI middleware that records them.

The latency of a streamed response runs to its last byte, not to its first, so a slow export
shows as slow. Routes are labelled by their template (``/v1/ohlcv/{interval}``), never by the
path a client sent, so the label set stays bounded.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from k2.observability.metrics import Metrics

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    """Metrics of one API process, registered on its :class:`Metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        registry = metrics.registry
        self.metrics = metrics
        self.requests = Counter(
            "k2_api_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "k2_api_request_seconds",
            "Time from request to the last byte of the response, by route template.",
            ("route",),
            buckets=_BUCKETS,
            registry=registry,
        )
        self.stream_clients = Gauge(
            "k2_api_stream_clients",
            "WebSocket clients of the live trade stream.",
            registry=registry,
        )
        self.stream_trades = Counter(
            "k2_api_stream_trades",
            "Trades read from the raw topics and normalised for the live stream.",
            ("exchange",),
            registry=registry,
        )
        self.stream_dropped_clients = Counter(
            "k2_api_stream_clients_dropped",
            "Live-stream clients disconnected for falling behind.",
            registry=registry,
        )


class MetricsMiddleware:
    """Pure ASGI middleware: count and time every HTTP request by its route template."""

    def __init__(self, app: Any, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def observe(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self._record(scope, status["code"], started)

        try:
            await self.app(scope, receive, observe)
        except Exception:
            self._record(scope, 500, started)
            raise

    def _record(self, scope: dict[str, Any], status: int, started: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        self.metrics.requests.labels(route, scope.get("method", ""), str(status)).inc()
        self.metrics.latency.labels(route).observe(time.perf_counter() - started)
