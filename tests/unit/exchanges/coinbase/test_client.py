"""The Coinbase feed client's own rules: a jump of a connection's message count is reported."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from structlog.testing import capture_logs

from k2.exchanges.base import Envelope
from k2.exchanges.coinbase import wire
from k2.exchanges.coinbase.client import CoinbaseFeedClient, CoinbaseFeedOptions
from k2.exchanges.feed import Lane


def test_a_jump_of_the_connections_message_count_is_reported() -> None:
    """sequence_num counts a connection's messages: a jump says messages were lost on it."""
    client = CoinbaseFeedClient(CoinbaseFeedOptions(("BTC-USD",)))
    lane = Lane(0, ["BTC-USD"], SimpleNamespace(), SimpleNamespace())  # type: ignore[arg-type]
    conn: Any = SimpleNamespace(connection_id="c1")
    client.new_session(lane, conn)
    envelope = Envelope(1, "c1", 0, "coinbase-advanced")
    beats = [wire.render_heartbeats(n, "t", "now", n) for n in (0, 1, 4, 2, 5)]
    with capture_logs() as logs:
        for text in beats:
            client.parse(text, envelope)
    lost = [e for e in logs if e["event"] == "ws_messages_lost_detected"]
    assert [(e["expected_sequence"], e["received_sequence"], e["lost"]) for e in lost] == [
        (2, 4, 2)
    ]
