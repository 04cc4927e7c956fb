"""OKX's part of the simulator's settings: the instruments it lists and OKX's own limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from k2.errors import ConfigError
from k2.exchanges.okx import EXCHANGE, wire
from k2.simulator.exchanges import ExchangeSimSettings

if TYPE_CHECKING:
    from k2.simulator.settings import SimulatorConfig


@dataclass(frozen=True, slots=True)
class OkxSimSettings(ExchangeSimSettings):
    """OKX's numbers by default: a connection without a subscription, or without data pushed,
    for 30 s is cut; 480 subscribe/unsubscribe requests a connection an hour; REST history 20
    requests per 2 s."""

    connections: ClassVar[tuple[str, ...]] = ("okx-business", "okx-public")
    symbols_help: ClassVar[str] = (
        "OKX spot instruments to list (comma-separated); default: the whole universe of 700 "
        "(BTC-USDT, ETH-USDT, ... first)."
    )
    idle_s: float = field(
        default=wire.IDLE_CUT_S,
        metadata={
            "flag": "idle",
            "help": "OKX cuts a connection without a subscription or data for this many seconds.",
        },
    )
    requests_per_hour: int = field(
        default=wire.REQUESTS_PER_HOUR,
        metadata={"help": "Subscribe/unsubscribe requests an OKX connection may send an hour."},
    )
    rest_limit: int = field(
        default=20, metadata={"help": "OKX REST requests per endpoint per 2 s; 0: no limit."}
    )

    def validate(self) -> None:
        if self.idle_s <= 0 or self.requests_per_hour < 1:
            raise ConfigError("the OKX idle cut must be positive and the request limit at least 1")


SECTION = OkxSimSettings


def section(config: SimulatorConfig) -> OkxSimSettings:
    """OKX's section of ``config``."""
    found = config.exchange(EXCHANGE)
    assert isinstance(found, OkxSimSettings)
    return found
