"""What the terminal shows: the status screen, its components and builds."""

from __future__ import annotations

from rich.console import Console

from k2.cli.output import status_renderable
from k2.ops.components import Component
from k2.ops.status import Status


def test_the_status_screen_marks_stale_services() -> None:
    """The rendered status names each component, its state and a stale build in words."""
    components = [
        Component("kafka", "service", True, "127.0.0.1:9092", 10, 5.0, "4.1.1"),
        Component(
            "ingest-binance",
            "ingest",
            True,
            "127.0.0.1:9401",
            11,
            5.0,
            "0.1.0",
            "abc",
            stale="runs stale code: git sha abc, installed def; restart it",
        ),
        Component("stream", "stream", False, "127.0.0.1:9402"),
    ]
    status = Status("/home/k2", True, "0.1.0", "def", components, "simulator")
    console = Console(record=True, width=160)
    console.print(status_renderable(status))
    text = console.export_text()
    assert "K2 0.1.0 (def)" in text and "source simulator" in text
    lines = text.splitlines()
    assert "up" in next(line for line in lines if line.startswith("kafka"))
    assert "down" in next(line for line in lines if line.startswith("stream"))
    assert "runs stale code: git sha abc" in text
