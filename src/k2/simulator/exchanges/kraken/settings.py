"""Kraken's part of the simulator's settings: the pairs it lists and Kraken's own limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from k2.exchanges.kraken import EXCHANGE
from k2.simulator.exchanges import ExchangeSimSettings

if TYPE_CHECKING:
    from k2.simulator.settings import SimulatorConfig


@dataclass(frozen=True, slots=True)
class KrakenSimSettings(ExchangeSimSettings):
    """Kraken's numbers by default: a connection with no subscription is closed after 60 s,
    REST allows 150 calls per 10 s, and a connection may send 20 messages a second."""

    connections: ClassVar[tuple[str, ...]] = ("kraken-v1", "kraken-v2")
    symbols_help: ClassVar[str] = (
        "Kraken pairs to list (v1 names, comma-separated); default: the whole universe of 700 "
        "pairs (XBT/USD, ETH/USD, ... first)."
    )
    idle_s: float = field(
        default=60.0,
        metadata={
            "flag": "idle",
            "help": "Kraken closes connections without a subscription after this many seconds.",
        },
    )
    rest_limit: int = field(
        default=150, metadata={"help": "Kraken REST calls per 10 s; 0: no limit."}
    )
    msg_rate: int = field(
        default=20,
        metadata={
            "help": "Messages a Kraken connection may send per second before `Exceeded msg rate`."
        },
    )


SECTION = KrakenSimSettings


def section(config: SimulatorConfig) -> KrakenSimSettings:
    """Kraken's section of ``config``."""
    found = config.exchange(EXCHANGE)
    assert isinstance(found, KrakenSimSettings)
    return found
