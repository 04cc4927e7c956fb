"""The FastAPI application: the ``/v1`` routes, the live stream, health, metrics and the page.

:func:`create_app` builds one application from the settings; the lake reader's refresh thread
starts with the application and stops with it, the live-stream consumer starts with its first
client. Every refusal is JSON ``{"detail": "..."}`` with the status the route documents; an
unexpected failure is a 500 whose detail names the cause (and is logged), never a traceback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import structlog
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from k2.api.bookstream import stream_book
from k2.api.metrics import ApiMetrics, MetricsMiddleware
from k2.api.reader import LakeReader
from k2.api.routes import ApiContext, router
from k2.api.security import KeyCheck, RateLimiter, presented_key
from k2.api.stream import Closing, LiveTrades
from k2.config import Settings
from k2.errors import ApiRateLimitedError, ApiRequestError, K2Error, QueryError
from k2.lake.books import book_at
from k2.observability.metrics import Metrics
from k2.version import k2_version

log = structlog.get_logger(__name__)

_WHOLE_BOOK = 1_000_000  # levels a side: every level the book holds
_DESCRIPTION = """Read-only access to K2's Gold tables: trades, OHLCV bars, completeness, order
books at any instant, and live trade and book streams. Prices and sizes are exact decimal strings
(decimal(38,18) in Parquet and Arrow); times are RFC 3339 in UTC with microseconds. When API keys
are configured, send one as `X-API-Key` (or `Authorization: Bearer`)."""


def _static_dir() -> str:
    return str(resources.files("k2.api").joinpath("static"))


def create_app(settings: Settings, reader: LakeReader | None = None) -> FastAPI:
    """The API over the catalog of ``settings`` (a given ``reader`` is used as is)."""
    api = settings.api
    metrics = ApiMetrics(Metrics("api"))
    lake = reader or LakeReader(api, settings.lake_access())
    live = LiveTrades(
        settings.kafka_config(),
        settings.registry_config(),
        settings.exchanges,
        settings.kafka.topic_prefix,
        api.stream_queue_max,
        metrics,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(lake.start)
        log.info("api_started", host=api.host, port=api.port, keys=len(api.key_hashes))
        try:
            yield
        finally:
            await asyncio.to_thread(live.stop)
            await asyncio.to_thread(lake.stop)

    app = FastAPI(
        title="K2",
        version=k2_version(),
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served below from the vendored Swagger UI: no CDN, works offline
        redoc_url=None,
    )
    app.state.k2 = ApiContext(
        settings=api,
        exchanges=settings.exchanges,
        reader=lake,
        keys=KeyCheck(api.key_hashes),
        limiter=RateLimiter(api.rate_limit_per_s, api.rate_limit_burst),
    )
    app.state.live = live
    app.include_router(router)
    _add_errors(app)
    _add_service_routes(app, lake, metrics)
    _add_stream(app, live)
    _add_book_stream(app, settings.kafka_config(), settings.registry_config())
    app.mount("/static", StaticFiles(directory=_static_dir()), name="static")
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _add_errors(app: FastAPI) -> None:
    @app.exception_handler(ApiRequestError)
    async def refused(request: Request, exc: ApiRequestError) -> JSONResponse:
        headers = {}
        if isinstance(exc, ApiRateLimitedError):
            headers["Retry-After"] = str(exc.retry_after_s)
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in error['loc'][1:]) or 'request'}: {error['msg']}"
            for error in exc.errors()
        ]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.exception_handler(QueryError)
    async def query_failed(request: Request, exc: QueryError) -> JSONResponse:
        log.error("api_query_failed", path=request.url.path, error=str(exc))
        return JSONResponse({"detail": f"query failed: {exc}"}, status_code=500)


def _add_service_routes(app: FastAPI, lake: LakeReader, metrics: ApiMetrics) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The web page: the pipeline at a glance, a live candlestick chart, the latest trades."""
        return FileResponse(f"{_static_dir()}/index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        """Swagger UI over ``/openapi.json``, served from the package (no CDN)."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="K2 API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )

    @app.get("/healthz", summary="Catalog and DuckDB usable; age of the newest commit")
    def healthz() -> JSONResponse:
        ok, detail = lake.healthy()
        newest = lake.newest_commit_ms()

        age = round(time.time() - newest / 1000, 3) if newest else None
        body = {
            "status": "ok" if ok else "unavailable",
            "detail": detail,
            "tables": len(lake.views.tables),
            "newest_commit_age_s": age,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    def prometheus() -> Response:
        return Response(metrics.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _add_stream(app: FastAPI, live: LiveTrades) -> None:
    @app.websocket("/v1/stream/trades")
    async def stream_trades(
        websocket: WebSocket, exchange: str, symbol: str, api_key: str | None = None
    ) -> None:
        """Trades of one symbol as they reach Kafka; the first message is ``start``."""
        ctx: ApiContext = app.state.k2
        try:
            if ctx.keys.required:
                ctx.keys.identify(presented_key(dict(websocket.headers), api_key))
            if exchange not in live.topics.values():
                raise ApiRequestError(404, f"unknown exchange {exchange!r}")
            # Accepted only once subscribed: a client whose connection opened misses nothing.
            subscriber = await live.subscribe(exchange, symbol)
        except K2Error as exc:
            await websocket.accept()
            code = 1008 if isinstance(exc, ApiRequestError) else 1011
            await websocket.close(code=code, reason=str(exc)[:120])
            return
        await websocket.accept()
        try:
            await _pump(websocket, subscriber.queue)
        finally:
            live.unsubscribe(subscriber)


def _add_book_stream(app: FastAPI, kafka: dict[str, str], registry: dict[str, str]) -> None:
    @app.websocket("/v1/stream/book")
    async def stream_book_route(
        websocket: WebSocket, exchange: str, symbol: str, api_key: str | None = None
    ) -> None:
        """One symbol's whole book, then every message that changes it; the first message is
        ``book`` (see :mod:`k2.api.bookstream`)."""
        ctx: ApiContext = app.state.k2
        try:
            if ctx.keys.required:
                ctx.keys.identify(presented_key(dict(websocket.headers), api_key))
            moment = datetime.now(UTC)
            book = await asyncio.to_thread(
                ctx.reader.books,
                lambda c, table: book_at(c, table, exchange, symbol, moment, _WHOLE_BOOK),
            )
        except K2Error as exc:
            await websocket.accept()
            code = 1008 if isinstance(exc, (ApiRequestError, QueryError)) else 1011
            await websocket.close(code=code, reason=str(exc)[:120])
            return
        await websocket.accept()
        await stream_book(websocket, book, kafka, registry)


async def _pump(websocket: WebSocket, queue: asyncio.Queue[Any]) -> None:
    """Send queued texts until the client leaves or the hub ends the stream."""

    async def client_gone() -> None:
        with suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()

    watcher = asyncio.create_task(client_gone())
    try:
        while not watcher.done():
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                return
            items = [getter.result()]
            while not queue.empty():  # one wake-up sends everything already queued
                items.append(queue.get_nowait())
            for item in items:
                if isinstance(item, Closing):
                    await websocket.close(code=item.code, reason=item.reason)
                    return
                await websocket.send_text(item)
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        watcher.cancel()
