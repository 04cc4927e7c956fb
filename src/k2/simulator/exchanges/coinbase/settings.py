"""Coinbase's part of the simulator's settings: the products it lists and Coinbase's own limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from k2.errors import ConfigError
from k2.exchanges.coinbase import EXCHANGE, wire
from k2.simulator.exchanges import ExchangeSimSettings

if TYPE_CHECKING:
    from k2.simulator.settings import SimulatorConfig


@dataclass(frozen=True, slots=True)
class CoinbaseSimSettings(ExchangeSimSettings):
    """Coinbase's numbers by default: a connection without a subscribe is closed after 5 s, a
    channel that sent nothing for 60 s goes quiet unless ``heartbeats`` is subscribed, an IP
    address may send 8 messages a second, and the public REST answers 10 requests a second."""

    connections: ClassVar[tuple[str, ...]] = ("coinbase",)
    symbols_help: ClassVar[str] = (
        "Coinbase products to list (comma-separated); default: the whole universe of 640 "
        "products (BTC-USD, ETH-USD, ... first), each -USD one with its -USDC twin."
    )
    subscribe_timeout_s: float = field(
        default=wire.SUBSCRIBE_DEADLINE_S,
        metadata={
            "flag": "subscribe-timeout",
            "help": "Coinbase closes a connection that sent no subscribe within this many seconds.",
        },
    )
    channel_idle_s: float = field(
        default=wire.CHANNEL_IDLE_S,
        metadata={
            "flag": "channel-idle",
            "help": "Without heartbeats, a channel that sent nothing this long goes quiet.",
        },
    )
    message_rate: int = field(
        default=wire.MESSAGES_PER_S,
        metadata={"help": "Messages an IP address may send per second; 0: no limit."},
    )
    rest_limit: int = field(
        default=10, metadata={"help": "Coinbase REST requests per second; 0: no limit."}
    )

    def validate(self) -> None:
        if self.subscribe_timeout_s <= 0 or self.channel_idle_s <= 0:
            raise ConfigError(
                "the Coinbase subscribe timeout and channel idle time must be positive"
            )


SECTION = CoinbaseSimSettings


def section(config: SimulatorConfig) -> CoinbaseSimSettings:
    """Coinbase's section of ``config``."""
    found = config.exchange(EXCHANGE)
    assert isinstance(found, CoinbaseSimSettings)
    return found
