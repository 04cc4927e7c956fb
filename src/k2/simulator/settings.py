"""The simulator's settings: one frozen record built by ``k2 simulate`` or by a test.

The defaults are the venues' own numbers (Binance's 20 s ping, 60 s pong deadline, 5 control
messages per second, 1024 streams, 24 h connection life; Kraken's 1 s heartbeat and 50-trade
snapshot), so a client that works against the defaults works against the venues. Tests shorten the
timings to keep runs in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from k2.errors import ConfigError
from k2.simulator.faults import FaultRule
from k2.simulator.instruments import BINANCE, KRAKEN


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything the simulator can be told at start (faults can also change while it runs)."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    seed: int = 1
    # Trade ids start above this (plus a per-symbol offset from the seed). None: the wall clock
    # in microseconds at start, so ids keep rising across restarts as a venue's do, and an
    # ingest resuming from Kafka sees new trades, not replays.
    id_base: int | None = None
    rate: int = 100  # synthetic trades per second, in total, shared out over all symbols
    skew: float = 1.0  # a symbol's share of the rate is 1 / rank**skew (0: even)
    kraken_symbols: tuple[str, ...] | None = None  # None: the whole universe (700 pairs)
    binance_symbols: tuple[str, ...] | None = None  # None: the whole universe (2,000)
    trades_per_symbol: int | None = None  # stop generating a symbol after this many trades
    replay: tuple[Path, ...] = ()  # recordings to replay instead of the synthetic market
    replay_speed: float = 1.0  # 2.0 plays twice as fast; 0 plays everything at once
    ledger_path: Path | None = None
    retention: int = 100_000  # trades kept per symbol for snapshots and REST history
    tick_s: float = 0.01  # how often the market advances (and frames are batched)
    max_batch: int = 100  # Kraken trades per frame at most
    snapshot_size: int = 50
    heartbeat_s: float = 1.0  # Kraken heartbeat after this long without trade traffic
    kraken_idle_s: float = 60.0  # Kraken closes a connection with no subscription after this
    binance_ping_s: float = 20.0
    binance_pong_timeout_s: float = 60.0
    binance_control_rate: int = 5  # incoming control messages per second before a disconnect
    binance_max_streams: int = 1024
    max_connection_age_s: float = 24 * 3600.0  # Binance's connection life
    shutdown_after_s: float | None = None  # Binance serverShutdown this long after connect
    shutdown_grace_s: float = 1.0  # serverShutdown → disconnection
    faults: tuple[FaultRule, ...] = ()
    lose_every: int = 0  # the venues lose every n-th trade id from their streams (0: never)
    lose_exchanges: tuple[str, ...] = (KRAKEN, BINANCE)
    binance_weight_limit: int = 6000  # REST request weight per minute (0: unlimited)
    kraken_rest_limit: int = 150  # REST requests per 10 s (0: unlimited)
    kraken_msg_rate: int = 20  # incoming messages per second before "Exceeded msg rate"

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
        if self.tick_s <= 0 or self.heartbeat_s <= 0 or self.binance_ping_s <= 0:
            raise ConfigError("tick, heartbeat and ping intervals must be positive")
        if self.snapshot_size < 0 or self.max_batch < 1:
            raise ConfigError("snapshot size must be 0 or more and batch size at least 1")
        if self.retention < self.snapshot_size:
            raise ConfigError("retention must hold at least one snapshot")
        for rule in self.faults:
            rule.validate()
