"""``k2 api``: the read-only HTTP API, its live trade stream and its web page."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from k2.cli.context import K2Group, settings_of, stop_on_signals
from k2.config import revised

if TYPE_CHECKING:
    from fastapi import FastAPI


@click.group("api", cls=K2Group, invoke_without_command=True)
@click.option("--host", help="Address to bind (default: K2_API__HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: K2_API__PORT, 8000).")
@click.option("--workers", type=click.IntRange(min=1), help="Server processes (K2_API__WORKERS).")
@click.pass_context
def api(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API until Ctrl-C: /v1 (OpenAPI at /docs), the web page at /, /metrics.

    It reads the lakehouse through DuckDB and follows new commits by itself; the live stream
    (WS /v1/stream/trades) reads the raw Kafka topics.
    """
    if ctx.invoked_subcommand is not None:
        return
    from k2.api.server import serve

    settings = settings_of(ctx)
    changes = {"host": host, "port": port, "workers": workers}
    options = revised(settings.api, **{k: v for k, v in changes.items() if v is not None})
    settings = revised(settings, api=options)

    def app() -> FastAPI:
        from k2.api.app import create_app  # in the serving process: a forking parent never loads it

        return create_app(settings)

    serve(
        options,
        app,
        stop_on_signals(),
        lambda bound: click.echo(f"K2 API on http://{options.host}:{bound}/ (docs: /docs)"),
    )


@api.command("hash-key")
@click.option("--key", prompt=True, hide_input=True, confirmation_prompt=True, help="The key.")
def hash_key_command(key: str) -> None:
    """Print the digest of an API key, for K2_API__KEY_HASHES (the key itself is not kept)."""
    from k2.api.security import hash_key

    click.echo(hash_key(key))
