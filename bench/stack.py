"""A private embedded stack for a benchmark: a temporary folder and free ports."""

from __future__ import annotations

from pathlib import Path

from k2.config import Settings, StackSettings
from k2.stack.ports import free_port


def private_settings(home: Path) -> Settings:
    """Settings for a stack of its own in ``home`` (broker heap 1g), on free ports."""
    stack = StackSettings(
        home=home,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        registry_port=free_port(),
        registry_management_port=free_port(),
        kafka_heap="1g",
        start_timeout_s=180,
    )
    return Settings(stack=stack, _env_file=None)  # type: ignore[call-arg]
