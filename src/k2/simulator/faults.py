"""Faults on demand: what a misbehaving exchange does to one connection.

A :class:`FaultRule` says what to do (drop, stall, garble, duplicate, reject a symbol) and to which
connections: those of a protocol (``kraken-v1``, ``kraken-v2``, ``binance``...), or of an
exchange (``kraken`` for both Kraken versions), as :func:`k2.simulator.exchanges.fault_protocols`
lists them, and how many of them (``connections``; ``None`` for every one). Rules come
from the command line at start and from ``POST /_sim/faults`` while running; a rule added at run
time applies first to the connections already open (oldest first) and then to new ones, until its
quota is used. Counters in a rule (trades, seconds) start when the rule reaches the connection.

Lost trade ids are not a connection fault: the exchange loses them for everyone (see
:meth:`k2.simulator.exchange.ExchangeMarket.set_loss`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import structlog

from k2.errors import ConfigError
from k2.simulator.exchanges import connection_protocols

log = structlog.get_logger("k2.simulator")
StallMode = Literal["heartbeats", "silent"]
# What a book fault does to one book update of a connection (see FaultRule).
BookFault = Literal["dropped", "bad_checksum", "sequence_jump"]
_EVERY = (
    "garble_every",
    "duplicate_every",
    "book_drop_every",
    "book_checksum_every",
    "book_jump_every",
    "stale_snapshots",
)


@dataclass(frozen=True, slots=True)
class FaultRule:
    """What to do to a connection, and to which ones.

    - ``drop_after_trades``/``drop_after_s``: cut the TCP connection (no close frame) once that
      many trades were sent, or that many seconds passed (0: at once);
    - ``stall``: after ``stall_after_trades`` trades, stop sending trades: ``heartbeats`` keeps
      heartbeats, protocol pings and answers flowing, ``silent`` sends nothing at all (not even a
      pong); ``stall_for_s`` ends the stall (the trades of the stalled time are skipped);
    - ``garble_every``/``duplicate_every``: corrupt / send twice every n-th trade frame;
    - ``reject_symbols``: refuse subscriptions to these symbols (as the protocol spells them):
      Kraken answers its error status (``Currency pair not supported <PAIR>``); Binance, which
      never refuses a well-formed stream, treats the symbol as unknown: accepted, and silent;
    - ``book_drop_every``: leave out every n-th book update of the connection (its changes are
      lost to the client; the sequence of the next one shows the hole where the exchange has one);
    - ``book_checksum_every``: send a wrong checksum with every n-th book update (exchanges with a
      checksum: Kraken, OKX);
    - ``book_jump_every``: let the sequence of every n-th book update jump by one, with no change
      missing (exchanges with a sequence: Binance, OKX, Bybit);
    - ``stale_snapshots``: the next n REST book snapshots of the exchange (Binance depth) are the
      oldest state the exchange still knows, not the current one. An exchange fault, not a
      connection's: ``connections`` does not apply to it.
    """

    protocol: str | None = None
    connections: int | None = None
    drop_after_trades: int | None = None
    drop_after_s: float | None = None
    stall: StallMode | None = None
    stall_after_trades: int = 0
    stall_for_s: float | None = None
    garble_every: int | None = None
    duplicate_every: int | None = None
    reject_symbols: tuple[str, ...] = ()
    book_drop_every: int | None = None
    book_checksum_every: int | None = None
    book_jump_every: int | None = None
    stale_snapshots: int | None = None

    def matches(self, protocol: str) -> bool:
        return self.protocol is None or protocol.startswith(self.protocol)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FaultRule:
        """A rule from JSON (the admin endpoint); unknown keys are an error, not ignored."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown fault setting(s) {unknown}; known: {sorted(known)}")
        values = dict(data)
        if "reject_symbols" in values:
            values["reject_symbols"] = tuple(values["reject_symbols"])
        rule = cls(**values)
        rule.validate()
        return rule

    def validate(self) -> None:
        known = connection_protocols()
        if self.protocol is not None and not any(p.startswith(self.protocol) for p in known):
            raise ConfigError(f"unknown protocol {self.protocol!r}; known: {list(known)}")
        if self.stall not in (None, "heartbeats", "silent"):
            raise ConfigError(f"stall must be heartbeats or silent, not {self.stall!r}")
        for name in _EVERY:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data["reject_symbols"] = list(self.reject_symbols)
        return data


@dataclass
class _Active:
    rule: FaultRule
    trades_at_start: int
    started: float


@dataclass
class ConnectionFaults:
    """The rules in force on one connection and the counters they are measured against."""

    trades_sent: int = 0
    trade_frames: int = 0
    book_updates: int = 0
    active: list[_Active] = field(default_factory=list)

    def on_book_update(self) -> BookFault | None:
        """Count one book update; the fault to apply to it, if any (a drop wins over a wrong
        checksum, which wins over a jump)."""
        self.book_updates += 1
        count = self.book_updates
        found: set[BookFault] = set()
        for item in self.active:
            rule = item.rule
            if rule.book_drop_every and count % rule.book_drop_every == 0:
                found.add("dropped")
            if rule.book_checksum_every and count % rule.book_checksum_every == 0:
                found.add("bad_checksum")
            if rule.book_jump_every and count % rule.book_jump_every == 0:
                found.add("sequence_jump")
        for fault in ("dropped", "bad_checksum", "sequence_jump"):
            if fault in found:
                return fault
        return None

    def add(self, rule: FaultRule) -> None:
        self.active.append(_Active(rule, self.trades_sent, time.monotonic()))

    def rejects(self, symbol: str) -> bool:
        return any(symbol in item.rule.reject_symbols for item in self.active)

    def stall_mode(self) -> StallMode | None:
        """The stall in force now, if any (``silent`` wins over ``heartbeats``)."""
        now = time.monotonic()
        modes = set()
        for item in self.active:
            rule = item.rule
            if (
                rule.stall is None
                or self.trades_sent - item.trades_at_start < rule.stall_after_trades
            ):
                continue
            if rule.stall_for_s is not None and now - item.started >= rule.stall_for_s:
                continue
            modes.add(rule.stall)
        if "silent" in modes:
            return "silent"
        return "heartbeats" if modes else None

    def trades_before_drop(self) -> int | None:
        """How many more trades may be sent before the connection must drop (``None``: no limit)."""
        room: int | None = None
        for item in self.active:
            limit = item.rule.drop_after_trades
            if limit is not None:
                left = max(0, limit - (self.trades_sent - item.trades_at_start))
                room = left if room is None else min(room, left)
        return room

    def trades_before_stall(self) -> int | None:
        """How many more trades may be sent before a stall begins (``None``: no stall coming)."""
        room: int | None = None
        for item in self.active:
            if item.rule.stall is None:
                continue
            left = max(0, item.rule.stall_after_trades - (self.trades_sent - item.trades_at_start))
            room = left if room is None else min(room, left)
        return room

    def drop_due(self) -> bool:
        """True when a time or trade-count drop is due now."""
        now = time.monotonic()
        for item in self.active:
            seconds = item.rule.drop_after_s
            if seconds is not None and now - item.started >= seconds:
                return True
        room = self.trades_before_drop()
        return room == 0

    def next_deadline(self) -> float | None:
        """Seconds until the next timed fault (drop or end of a stall) takes effect."""
        now = time.monotonic()
        waits = []
        for item in self.active:
            for seconds in (item.rule.drop_after_s, item.rule.stall_for_s):
                if seconds is not None:
                    left = item.started + seconds - now
                    if left > 0:
                        waits.append(left)
        return min(waits) if waits else None

    def on_trade_frame(self, trades: int) -> tuple[bool, bool]:
        """Count one trade frame; returns ``(garble, duplicate)`` for it."""
        self.trade_frames += 1
        self.trades_sent += trades
        garble = duplicate = False
        for item in self.active:
            if item.rule.garble_every and self.trade_frames % item.rule.garble_every == 0:
                garble = True
            if item.rule.duplicate_every and self.trade_frames % item.rule.duplicate_every == 0:
                duplicate = True
        return garble, duplicate


def garble(frame: str) -> str:
    """A corrupted copy of ``frame``: cut in the middle and ended with bytes no JSON allows."""
    return frame[: max(1, len(frame) // 2)] + "\x00#garbled"


class FaultBook:
    """The rules not yet used up, handed to connections as they open."""

    def __init__(self, rules: tuple[FaultRule, ...] = ()) -> None:
        self._rules: list[list[Any]] = [[rule, rule.connections] for rule in rules]
        self._stale: list[list[Any]] = []  # [rule, REST book snapshots left to serve stale]
        for rule in rules:
            self.add_exchange_faults(rule)

    def add(self, rule: FaultRule) -> None:
        self._rules.append([rule, rule.connections])

    def add_exchange_faults(self, rule: FaultRule) -> None:
        """Take the part of ``rule`` that is the exchange's, not a connection's (stale
        snapshots)."""
        if rule.stale_snapshots:
            self._stale.append([rule, rule.stale_snapshots])

    def take_stale_snapshot(self, exchange: str) -> bool:
        """True when the next REST book snapshot of ``exchange`` must be stale (one is used)."""
        for entry in self._stale:
            if entry[0].matches(exchange) and entry[1] > 0:
                entry[1] -= 1
                self._stale = [item for item in self._stale if item[1] > 0]
                log.info("sim_stale_snapshot_served", exchange=exchange, left=entry[1])
                return True
        return False

    def clear(self) -> None:
        self._rules.clear()
        self._stale.clear()

    def claim(self, protocol: str) -> list[FaultRule]:
        """The rules a new (or existing) connection of ``protocol`` takes, using their quota."""
        taken = []
        for entry in self._rules:
            rule, left = entry
            if rule.matches(protocol) and (left is None or left > 0):
                taken.append(rule)
                if left is not None:
                    entry[1] = left - 1
        self._rules = [entry for entry in self._rules if entry[1] is None or entry[1] > 0]
        return taken

    def pending(self) -> list[dict[str, Any]]:
        return [{**rule.to_dict(), "connections_left": left} for rule, left in self._rules]
