"""Fault rules: what they do to a connection, and to which connections."""

from __future__ import annotations

import json

import pytest

from k2.errors import ConfigError
from k2.simulator.faults import ConnectionFaults, FaultBook, FaultRule, garble


def test_drop_after_n_trades_leaves_exactly_n() -> None:
    """A connection told to drop after n trades sends exactly n trades, then the drop is due."""
    faults = ConnectionFaults()
    faults.add(FaultRule(drop_after_trades=5))
    assert faults.trades_before_drop() == 5
    faults.on_trade_frame(3)
    assert faults.trades_before_drop() == 2 and not faults.drop_due()
    faults.on_trade_frame(2)
    assert faults.drop_due()


def test_counters_start_when_the_rule_arrives() -> None:
    """A fault rule counts trades from when it reaches the connection, not from the connection's
    start."""
    faults = ConnectionFaults()
    faults.on_trade_frame(10)
    faults.add(FaultRule(drop_after_trades=4))
    assert faults.trades_before_drop() == 4


def test_drop_after_zero_seconds_is_due_at_once() -> None:
    """A drop after zero seconds is due at once."""
    faults = ConnectionFaults()
    faults.add(FaultRule(drop_after_s=0))
    assert faults.drop_due()


def test_stall_starts_after_its_trades_and_silent_wins() -> None:
    """A stall begins after its count of trades, and a silent stall wins over one that still sends
    heartbeats."""
    faults = ConnectionFaults()
    faults.add(FaultRule(stall="heartbeats", stall_after_trades=2))
    assert faults.stall_mode() is None
    faults.on_trade_frame(2)
    assert faults.stall_mode() == "heartbeats"
    faults.add(FaultRule(stall="silent"))
    assert faults.stall_mode() == "silent"


def test_a_timed_stall_ends() -> None:
    """A stall given a duration ends when the duration has passed."""
    faults = ConnectionFaults()
    faults.add(FaultRule(stall="silent", stall_for_s=0))
    assert faults.stall_mode() is None


def test_garble_and_duplicate_hit_every_nth_trade_frame() -> None:
    """Garbling and duplicating hit exactly every nth trade frame of the connection."""
    faults = ConnectionFaults()
    faults.add(FaultRule(garble_every=3, duplicate_every=2))
    decisions = [faults.on_trade_frame(1) for _ in range(6)]
    assert [g for g, _ in decisions] == [False, False, True, False, False, True]
    assert [d for _, d in decisions] == [False, True, False, True, False, True]


def test_a_garbled_frame_is_not_json() -> None:
    """A garbled frame is not valid JSON, so the ingest must dead-letter it."""
    with pytest.raises(ValueError):
        json.loads(garble('{"channel":"trade","data":[]}'))


def test_rules_reach_only_their_protocol_and_quota() -> None:
    """A fault rule reaches only connections of its protocol (an exchange name covers all its
    protocols), and only as many as it names."""
    book = FaultBook((FaultRule(protocol="kraken", connections=2, garble_every=1),))
    assert book.claim("binance") == []
    assert len(book.claim("kraken-v1")) == 1
    assert len(book.claim("kraken-v2")) == 1
    assert book.claim("kraken-v2") == [] and book.pending() == []


def test_a_rule_from_json_refuses_unknown_settings() -> None:
    """A fault rule sent as JSON is read with its settings, and a misspelt setting or an unknown
    protocol is refused by name."""
    rule = FaultRule.from_mapping({"protocol": "binance", "reject_symbols": ["BTCUSDT"]})
    assert rule.reject_symbols == ("BTCUSDT",)
    with pytest.raises(ConfigError, match="drop_after"):
        FaultRule.from_mapping({"drop_after": 3})
    with pytest.raises(ConfigError, match="protocol"):
        FaultRule.from_mapping({"protocol": "nosuch"})
