"""The simulator's settings: one frozen record built by ``k2 simulate`` or by a test.

The defaults are the exchanges' own numbers (Binance's 24 h connection life; Kraken's 1 s
heartbeat and 50-trade snapshot; each exchange's limits in its own section), so a client that
works against the defaults works against the exchanges. Tests shorten the timings to keep runs
in seconds.

Each exchange of the registry adds its section (``k2.simulator.exchanges.<exchange>.settings``)
as flat fields named ``<exchange>_<field>`` (``kraken_symbols``, ``binance_ping_s``), the names
of the ``k2 simulate`` options; :meth:`SimulatorBase.exchange` gives the section back whole.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from k2.errors import ConfigError
from k2.exchanges import EXCHANGES
from k2.simulator.exchanges import ExchangeSimSettings, section_type, sections
from k2.simulator.faults import FaultRule


@dataclass(frozen=True, slots=True)
class SimulatorBase:
    """Everything the simulator can be told at start (faults can also change while it runs),
    but the exchanges' own sections."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    seed: int = 1
    # Trade ids start above this (plus a per-symbol offset from the seed). None: the wall clock
    # in microseconds at start, so ids keep rising across restarts as an exchange's do, and an
    # ingest resuming from Kafka sees new trades, not replays.
    id_base: int | None = None
    rate: int = 100  # synthetic trades per second, in total, shared out over all symbols
    skew: float = 1.0  # a symbol's share of the rate is 1 / rank**skew (0: even)
    trades_per_symbol: int | None = None  # stop generating a symbol after this many trades
    replay: tuple[Path, ...] = ()  # recordings to replay instead of the synthetic market
    replay_speed: float = 1.0  # 2.0 plays twice as fast; 0 plays everything at once
    ledger_path: Path | None = None
    retention: int = 100_000  # trades kept per symbol for snapshots and REST history
    tick_s: float = 0.01  # how often the market advances (and frames are batched)
    max_batch: int = 100  # trades per frame at most, where a frame carries several (Kraken)
    snapshot_size: int = 50  # trades sent on subscribing (Kraken)
    heartbeat_s: float = 1.0  # heartbeat after this long without trade traffic (Kraken)
    max_connection_age_s: float = 24 * 3600.0  # a connection's life (Binance's)
    shutdown_after_s: float | None = None  # a shutdown notice this long after connect (Binance)
    shutdown_grace_s: float = 1.0  # shutdown notice → disconnection
    faults: tuple[FaultRule, ...] = ()
    lose_every: int = 0  # the exchanges lose every n-th trade id from their streams (0: never)
    lose_exchanges: tuple[str, ...] = field(default_factory=lambda: tuple(EXCHANGES))

    def exchange(self, name: str) -> ExchangeSimSettings:
        """The section of exchange ``name``, from this record's ``<name>_*`` fields."""
        section = section_type(name)
        values = {item.name: getattr(self, f"{name}_{item.name}") for item in fields(section)}
        return section(**values)

    def validate(self) -> None:
        """Refuse settings that cannot work, with the option to fix in the message."""
        if self.id_base is not None and not 0 <= self.id_base < 2**62:
            raise ConfigError("id base must be between 0 and 2**62")
        if self.rate < 0:
            raise ConfigError("rate must be 0 or more trades per second")
        if self.skew < 0:
            raise ConfigError("skew must be 0 (even) or more")
        if self.replay_speed < 0:
            raise ConfigError("replay speed must be 0 (all at once) or more")
        if self.tick_s <= 0 or self.heartbeat_s <= 0:
            raise ConfigError("tick and heartbeat intervals must be positive")
        if self.snapshot_size < 0 or self.max_batch < 1:
            raise ConfigError("snapshot size must be 0 or more and batch size at least 1")
        if self.retention < self.snapshot_size:
            raise ConfigError("retention must hold at least one snapshot")
        for name in EXCHANGES:
            self.exchange(name).validate()
        for rule in self.faults:
            rule.validate()


def simulator_config_type() -> type[SimulatorBase]:
    """The settings record with every exchange's section as ``<exchange>_<field>`` fields."""
    flat: list[tuple[str, Any, Any]] = []
    for name, section in sections().items():
        for item in fields(section):
            default = (
                field(default=item.default)
                if item.default_factory is dataclasses.MISSING
                else field(default_factory=item.default_factory)
            )
            flat.append((f"{name}_{item.name}", item.type, default))
    made = dataclasses.make_dataclass(
        "SimulatorConfig", flat, bases=(SimulatorBase,), frozen=True, slots=True
    )
    made.__module__, made.__doc__ = __name__, SimulatorBase.__doc__
    return made


if TYPE_CHECKING:
    SimulatorConfig = SimulatorBase
else:
    SimulatorConfig = simulator_config_type()
