"""``k2 simulate`` options become one simulator configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from k2.errors import ConfigError
from k2.simulator.faults import FaultRule
from k2.simulator.runner import build_config


def test_fault_options_make_one_rule_for_their_protocol() -> None:
    """`k2 simulate` fault options make one fault rule for the protocol they name."""
    config = build_config(
        {"protocol": "binance", "drop_after_trades": 5, "reject_symbols": (), "rate": 10}
    )
    assert config.faults == (FaultRule(protocol="binance", drop_after_trades=5),)
    assert config.rate == 10


def test_book_fault_options_make_a_rule_and_refuse_zero() -> None:
    """The book faults of the command line are one rule, and an interval of 0 is refused."""
    options = {"protocol": "okx", "book_checksum_every": 4, "stale_snapshots": 1}
    config = build_config(options)
    assert config.faults == (FaultRule(protocol="okx", book_checksum_every=4, stale_snapshots=1),)
    with pytest.raises(ConfigError, match="book_jump_every"):
        build_config({"book_jump_every": 0})


def test_a_protocol_alone_is_not_a_fault_and_unset_options_keep_defaults() -> None:
    """A protocol without a fault is no fault rule, and options left unset keep their defaults."""
    config = build_config({"protocol": "kraken", "connections": 2, "rate": None})
    assert config.faults == () and config.rate == 100


def test_paths_become_paths() -> None:
    """The ledger and replay options are read as paths."""
    config = build_config({"ledger_path": "out/ledger.jsonl", "replay": ("a.jsonl",)})
    assert config.ledger_path == Path("out/ledger.jsonl") and config.replay == (Path("a.jsonl"),)


def test_unknown_options_and_impossible_values_are_refused() -> None:
    """An unknown simulator option or an impossible value is refused by name."""
    with pytest.raises(ConfigError, match="unknown simulator option"):
        build_config({"colour": "blue"})
    with pytest.raises(ConfigError, match="rate"):
        build_config({"rate": -1})
