"""What every command shares: one-line errors, settings built once, a clean stop on signals."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click

from k2.config import Settings, load_settings
from k2.errors import K2Error
from k2.observability.logging import configure_logging


class K2Group(click.Group):
    """A click group that turns K2 errors into one line on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except K2Error as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


def settings_of(ctx: click.Context) -> Settings:
    """The settings, built once by the first command that asks, and logging configured."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = load_settings()
        configure_logging(root.obj.log_level, root.obj.log_format)
    settings: Settings = root.obj
    return settings


def stop_on_signals() -> threading.Event:
    """An event that Ctrl-C or SIGTERM sets, so a long-running command stops cleanly.

    A second Ctrl-C while it stops raises ``KeyboardInterrupt`` as usual.
    """
    stop = threading.Event()

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, handle)
    return stop


def comma_list(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """A click callback: ``"a, b,c"`` → ``("a", "b", "c")``; None stays None."""
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())
