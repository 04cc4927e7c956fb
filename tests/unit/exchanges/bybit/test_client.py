"""The Bybit feed client's own rules: ten topics a request within a connection's args budget,
acks confirm requests, a refusal is one line naming the symbol, replays dropped and no id jump
ever called a gap."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest

from k2.errors import SubscriptionRejectedError
from k2.exchanges.base import Control, ControlKind
from k2.exchanges.bybit import wire
from k2.exchanges.bybit.client import BybitFeedClient, BybitFeedOptions, SharedIdTracker, _Session


def test_a_full_connection_stays_within_the_args_budget() -> None:
    """A connection's topics of 30-character symbols stay within 21,000 characters of args."""
    budget = BybitFeedClient.max_symbols_per_connection
    args = json.dumps([wire.topic("X" * 30)] * budget, separators=(",", ":"))
    assert len(args) - 2 <= wire.MAX_ARGS_CHARS < len(args) + 45


def test_subscribe_requests_name_ten_topics_at_most() -> None:
    """The rendered request is Bybit's documented shape, with at most ten args."""
    request = json.loads(wire.subscribe([wire.topic("BTCUSDT")], "7"))
    assert request == {"req_id": "7", "op": "subscribe", "args": ["publicTrade.BTCUSDT"]}
    assert wire.MAX_ARGS_PER_REQUEST == 10
    assert json.loads(wire.ping("9")) == {"req_id": "9", "op": "ping"}


def test_ids_shared_by_every_symbol_drop_replays_and_report_no_gap() -> None:
    """A jump in a symbol's ids is no gap (the counter is shared); an id at or below the last
    one is a replay."""
    tracker = SharedIdTracker("bybit")
    tracker.seed("BTCUSDT", 100)
    assert tracker.observe("BTCUSDT", 100).duplicate
    assert tracker.observe("BTCUSDT", 5_000).gap is None
    assert not tracker.observe("BTCUSDT", 5_016).duplicate
    assert tracker.advance("BTCUSDT", 10**9) is None


class _Lane:
    index = 0
    symbols: ClassVar[list[str]] = ["BTCUSDT", "NOPEUSDT"]

    def __init__(self) -> None:
        self.session = _Session(conn=None)  # type: ignore[arg-type]
        self.session.pending = {"1": ["BTCUSDT", "NOPEUSDT"]}


def test_a_refused_subscription_is_one_line_naming_the_symbol() -> None:
    """Bybit's success:false naming a topic stops the feed with one line naming the symbol and
    Bybit's message."""
    client = BybitFeedClient(BybitFeedOptions(symbols=("BTCUSDT",)))
    refusal = Control(
        ControlKind.SUBSCRIPTION_REJECTED,
        "NOPEUSDT",
        {"op": "subscribe", "req_id": "1", "symbols": "NOPEUSDT",
         "message": "Invalid symbol :[publicTrade.NOPEUSDT]", "conn_id": "c-1"},
    )  # fmt: skip
    with pytest.raises(SubscriptionRejectedError) as caught:
        client.on_control(_Lane(), refusal)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "bybit refused the subscription to NOPEUSDT: Invalid symbol :[publicTrade.NOPEUSDT]"
    )


def test_too_many_args_names_the_request_s_symbols() -> None:
    """A refusal that names no topic (too many args) names the symbols of its request."""
    client = BybitFeedClient(BybitFeedOptions(symbols=("BTCUSDT",)))
    error = Control(
        ControlKind.ERROR, None, {"op": "subscribe", "req_id": "1", "message": "args size >10"}
    )
    with pytest.raises(SubscriptionRejectedError, match="BTCUSDT, NOPEUSDT: args size >10"):
        client.on_control(_Lane(), error)  # type: ignore[arg-type]
