"""The HTTP API reference: every route of the application ``k2 api`` serves, from the OpenAPI
document :func:`k2.api.app.create_app` builds, and the routes that document leaves out."""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Iterator
from typing import Any, cast

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount, Route

from generators.markdown import code, heading, page, prose, table
from generators.settings import type_text
from k2.api.app import create_app
from k2.api.reader import LakeReader
from k2.config import Settings

OPENAPI_FILE = "openapi.json"


def application(settings: Settings) -> FastAPI:
    """The API as ``k2 api`` builds it. Its routes are described, never called, so it gets a
    reader that opens no catalog (the application only keeps it until its first request)."""
    return create_app(settings, reader=cast(LakeReader, object()))


def _schema_type(schema: dict[str, Any]) -> str:
    options = schema.get("anyOf", [schema])
    kinds = [option.get("type", "") for option in options if option.get("type") != "null"]
    shown = " or ".join(kind for kind in kinds if kind) or "any"
    bounds = [
        f"{sign} {option[key]}"
        for option in options
        for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"))
        if key in option
    ]
    if "default" in schema:
        bounds.append(f"default {code(json.dumps(schema['default']))}")
    return ", ".join([shown, *bounds])


def _operation(path: str, method: str, operation: dict[str, Any]) -> Iterator[str]:
    title = f"{method.upper()} {path}"
    yield heading(3, code(title), title)
    yield f"**{operation.get('summary', '')}**"
    yield prose(operation.get("description"))
    parameters = operation.get("parameters", [])
    if parameters:
        yield table(
            ("parameter", "in", "required", "type", "description"),
            (
                (
                    code(parameter["name"]),
                    parameter["in"],
                    "yes" if parameter.get("required") else "no",
                    _schema_type(parameter.get("schema", {})),
                    parameter.get("description", ""),
                )
                for parameter in parameters
            ),
        )
    yield table(
        ("status", "meaning", "content"),
        (
            (code(status), response.get("description", ""), ", ".join(response.get("content", {})))
            for status, response in operation.get("responses", {}).items()
        ),
    )


def _websockets(app: FastAPI) -> Iterator[str]:
    for route in app.routes:
        if not isinstance(route, APIWebSocketRoute):
            continue
        title = f"WS {route.path}"
        yield heading(3, code(title), title)
        yield prose(route.endpoint.__doc__)
        signature = inspect.signature(route.endpoint)
        hints = typing.get_type_hints(route.endpoint)
        yield table(
            ("parameter", "in", "required", "type"),
            (
                (
                    code(name),
                    "query",
                    "yes" if parameter.default is inspect.Parameter.empty else "no",
                    type_text(hints[name]),
                )
                for name, parameter in signature.parameters.items()
                if name != "websocket"
            ),
        )


def _unlisted(app: FastAPI) -> Iterator[tuple[str, str]]:
    """Routes the OpenAPI document leaves out, with what they serve."""
    for route in app.routes:
        if isinstance(route, APIRoute) and not route.include_in_schema:
            described = route.summary or prose(route.endpoint.__doc__).split("\n\n")[0]
            for method in sorted(route.methods or ()):
                yield code(f"{method} {route.path}"), described
        elif isinstance(route, Route) and not isinstance(route, APIRoute):
            yield code(f"GET {route.path}"), "The OpenAPI document."
        elif isinstance(route, Mount):
            yield code(f"GET {route.path}/..."), "Static files of `/` and `/docs`."


def openapi_document(settings: Settings) -> str:
    return json.dumps(application(settings).openapi(), indent=2) + "\n"


def api_page(settings: Settings) -> str:
    app = application(settings)
    document = app.openapi()
    info = document["info"]
    return page(
        "# HTTP API",
        f"{info['title']} API {info['version']}, generated from the application `k2 api` serves "
        "when the site is built. The running API serves the same document at `/openapi.json` "
        f"and renders it at `/docs`; here it is as a file: [{OPENAPI_FILE}]({OPENAPI_FILE}).",
        prose(info.get("description")),
        "## Routes",
        *(
            block
            for path, operations in document["paths"].items()
            for method, operation in operations.items()
            for block in _operation(path, method, operation)
        ),
        "## WebSocket routes",
        *_websockets(app),
        "## Routes outside the OpenAPI document",
        table(("route", "serves"), _unlisted(app)),
    )
