"""Bybit's part of the simulator's settings: the spot symbols it lists and Bybit's own limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from k2.errors import ConfigError
from k2.exchanges.bybit import EXCHANGE, wire
from k2.simulator.exchanges import ExchangeSimSettings

if TYPE_CHECKING:
    from k2.simulator.settings import SimulatorConfig


@dataclass(frozen=True, slots=True)
class BybitSimSettings(ExchangeSimSettings):
    """Bybit's numbers by default: a connection with neither a ping nor data for 10 minutes is
    cut, a subscribe request carries at most 10 args, REST allows 600 requests per 5 s."""

    connections: ClassVar[tuple[str, ...]] = ("bybit-spot",)
    symbols_help: ClassVar[str] = (
        "Bybit spot symbols to list (comma-separated); default: the whole universe of 650 "
        "symbols (BTCUSDT, ETHUSDT, ... first)."
    )
    idle_s: float = field(
        default=wire.IDLE_CUT_S,
        metadata={
            "flag": "idle",
            "help": "Bybit cuts a connection with neither a ping nor data for this many seconds.",
        },
    )
    max_args: int = field(
        default=wire.MAX_ARGS_PER_REQUEST,
        metadata={"help": "Topics one Bybit subscribe request may name (more: refused whole)."},
    )
    rest_limit: int = field(
        default=wire.HTTP_REQUESTS_PER_5_S,
        metadata={"help": "Bybit REST requests per 5 s; beyond them HTTP 403; 0: no limit."},
    )

    def validate(self) -> None:
        if self.idle_s <= 0 or self.max_args < 1:
            raise ConfigError("the Bybit idle cut must be positive and max args at least 1")


SECTION = BybitSimSettings


def section(config: SimulatorConfig) -> BybitSimSettings:
    """Bybit's section of ``config``."""
    found = config.exchange(EXCHANGE)
    assert isinstance(found, BybitSimSettings)
    return found
