"""Binance's part of the simulator's settings: the symbols it lists and Binance's own limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from k2.errors import ConfigError
from k2.exchanges.binance import EXCHANGE
from k2.simulator.exchanges import ExchangeSimSettings

if TYPE_CHECKING:
    from k2.simulator.settings import SimulatorConfig


@dataclass(frozen=True, slots=True)
class BinanceSimSettings(ExchangeSimSettings):
    """Binance's numbers by default: a ping every 20 s answered within 60 s, 5 control
    messages a second, 1024 streams a connection, 6000 REST request weight a minute."""

    connections: ClassVar[tuple[str, ...]] = ("binance",)
    symbols_help: ClassVar[str] = (
        "Binance symbols to list (comma-separated); default: the whole universe of 2,000 "
        "symbols (BTCUSDT, ETHUSDT, ... first)."
    )
    ping_s: float = field(
        default=20.0,
        metadata={"flag": "ping-interval", "help": "Seconds between Binance ping frames."},
    )
    pong_timeout_s: float = field(
        default=60.0,
        metadata={
            "flag": "pong-timeout",
            "help": "Binance disconnects if a ping has no pong within this many seconds.",
        },
    )
    control_rate: int = field(
        default=5,
        metadata={"help": "Incoming control messages per second before Binance disconnects."},
    )
    max_streams: int = field(default=1024, metadata={"help": "Streams per Binance connection."})
    weight_limit: int = field(
        default=6000, metadata={"help": "Binance REST weight per minute; 0: no limit."}
    )

    def validate(self) -> None:
        if self.ping_s <= 0:
            raise ConfigError("the Binance ping interval must be positive")


SECTION = BinanceSimSettings


def section(config: SimulatorConfig) -> BinanceSimSettings:
    """Binance's section of ``config``."""
    found = config.exchange(EXCHANGE)
    assert isinstance(found, BinanceSimSettings)
    return found
