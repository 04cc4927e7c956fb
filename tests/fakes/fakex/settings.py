"""The fake exchange's settings section: its symbols and one limit of its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from k2.simulator.exchanges import ExchangeSimSettings


@dataclass(frozen=True, slots=True)
class FakexSimSettings(ExchangeSimSettings):
    connections: ClassVar[tuple[str, ...]] = ("fakex-ws",)
    frame_limit: int = field(default=7, metadata={"help": "Trades per frame."})


SECTION = FakexSimSettings
