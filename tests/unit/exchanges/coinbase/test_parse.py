"""Coinbase Advanced Trade messages parse exactly: documentation examples, recorded trades in the
current format, generated messages, and messages that must be dead-lettered."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2.exchanges.base import Control, ControlKind, Envelope, FieldValue
from k2.exchanges.coinbase import wire
from k2.exchanges.coinbase.fastparse import parse_trades
from k2.exchanges.coinbase.parse import generic_frame, parse_frame
from tests.unit.exchanges.strategies import json_values

from .strategies import as_market_trade, recorded_matches, trade_fields

ENVELOPE = Envelope(1_700_000_000_000_000, "conn", 7, "coinbase-advanced")

# The market_trades example of Coinbase's documentation, as ccxt quotes it (its trailing comma
# after "time" removed).
DOC_TRADES = """{
  "channel": "market_trades",
  "client_id": "",
  "timestamp": "2023-02-09T20:19:35.39625135Z",
  "sequence_num": 0,
  "events": [
    {
      "type": "snapshot",
      "trades": [
        {
          "trade_id": "000000000",
          "product_id": "ETH-USD",
          "price": "1260.01",
          "size": "0.3",
          "side": "BUY",
          "time": "2019-08-14T20:42:27.265Z"
        }
      ]
    }
  ]
}"""
# The heartbeats example of Coinbase's channel documentation (docs-stage.cloud.coinbase.com).
DOC_HEARTBEAT = (
    '{"channel": "heartbeats","client_id": "","timestamp": "2023-06-23T20:31:26.122969572Z",'
    '"sequence_num": 0,"events": [{"current_time": "2023-06-23 20:31:56.121961769 +0000 UTC '
    'm=+91717.525857105","heartbeat_counter": "3049"}]}'
)
# A subscriptions answer as nautilus_trader's test data holds it.
SUBSCRIPTIONS = (
    '{"channel":"subscriptions","client_id":"","timestamp":"2026-04-07T14:30:00.000000Z",'
    '"sequence_num":0,"events":[{"subscriptions":{"level2":["BTC-USD"],'
    '"market_trades":["BTC-USD","ETH-USD"]}}]}'
)


def test_the_documentation_example_is_one_snapshot_trade_with_its_text_as_sent() -> None:
    """The documented message gives its trade with every value exactly as Coinbase wrote it."""
    (trade,) = parse_frame(DOC_TRADES, ENVELOPE).trades
    assert (trade.exchange, trade.native_symbol, trade.trade_key) == ("coinbase", "ETH-USD", 0)
    assert trade.snapshot and trade.envelope == ENVELOPE
    assert dict(trade.fields) == {
        "trade_id": "000000000", "product_id": "ETH-USD", "price": "1260.01", "size": "0.3",
        "side": "BUY", "time": "2019-08-14T20:42:27.265Z", "sequence_num": 0,
        "timestamp": "2023-02-09T20:19:35.39625135Z", "event_type": "snapshot",
    }  # fmt: skip


def test_a_messages_trades_are_handed_on_oldest_first() -> None:
    """Coinbase lists the newest trade first; the per-product sequence is checked oldest first."""
    trades = [trade_fields_of(i) for i in (12, 11, 10)]
    text = wire.render_market_trades(trades, "update", 5, "2024-01-01T00:00:00.000000001Z")
    parsed = parse_frame(text, ENVELOPE)
    assert [t.trade_key for t in parsed.trades] == [10, 11, 12]
    assert parsed == generic_frame(text, ENVELOPE)


def trade_fields_of(trade_id: int) -> dict[str, FieldValue]:
    return wire.trade_fields(trade_id, "BTC-USD", "1.5", "2", "SELL", "2024-01-01T00:00:00.5Z")


def test_heartbeats_subscriptions_and_errors_are_controls() -> None:
    """The messages around the trades tell the client its message count and subscriptions."""
    (beat,) = parse_frame(DOC_HEARTBEAT, ENVELOPE).controls
    assert beat.kind == ControlKind.HEARTBEAT
    assert beat.detail["sequence_num"] == 0 and beat.detail["heartbeat_counter"] == "3049"
    (subscribed,) = parse_frame(SUBSCRIPTIONS, ENVELOPE).controls
    assert subscribed == Control(
        ControlKind.SUBSCRIBED,
        None,
        {"sequence_num": 0, "level2": "BTC-USD", "market_trades": "BTC-USD,ETH-USD"},
    )
    error = wire.render_error("Failed to subscribe", "XRP-USD is not a valid product")
    (refusal,) = parse_frame(error, ENVELOPE).controls
    assert refusal.kind == ControlKind.ERROR
    assert refusal.detail == {
        "message": "Failed to subscribe",
        "reason": "XRP-USD is not a valid product",
    }
    ticker = '{"channel":"ticker","client_id":"","timestamp":"t","sequence_num":3,"events":[]}'
    assert parse_frame(ticker, ENVELOPE).unknown_kind == "channel:ticker"


def test_recorded_trades_in_the_current_format_parse_back_exactly() -> None:
    """107 real trades, re-expressed as market_trades messages, come back value for value."""
    matches = recorded_matches()
    assert len(matches) == 107
    for sequence, match in enumerate(matches):
        fields = as_market_trade(match)
        text = wire.render_market_trades([fields], "update", sequence, "2021-04-17T16:43:37Z")
        (trade,) = parse_frame(text, ENVELOPE).trades
        assert trade.trade_key == match["trade_id"]
        assert {k: trade.fields[k] for k in fields} == fields
        assert parse_trades(text, ENVELOPE) == generic_frame(text, ENVELOPE)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"trade_id": "12a"}, "trade_id is not text of digits"),
        ({"trade_id": "٣"}, "trade_id is not text of digits"),
        ({"trade_id": "9" * 20}, "outside the signed 64-bit range"),
        ({"trade_id": 12}, "trade field trade_id missing or not a string"),
        ({"price": 1260.01}, "trade field price missing or not a string"),
        ({"size": None}, "trade field size missing or not a string"),
        ({"extra": {"nested": 1}}, "unexpected value type"),
    ],
)
def test_a_trade_that_cannot_be_read_makes_its_message_malformed(
    change: dict[str, object], reason: str
) -> None:
    """A message holding an unreadable trade goes whole to the dead-letter topic, with why."""
    trade: dict[str, object] = {**trade_fields_of(1), **change}
    text = json.dumps({"channel": "market_trades", "sequence_num": 1,
                       "events": [{"type": "update", "trades": [trade]}]})  # fmt: skip
    parsed = parse_frame(text, ENVELOPE)
    assert not parsed.trades and parsed.malformed is not None
    assert reason in parsed.malformed.error and parsed.malformed.raw == text


def test_frames_that_are_no_message_are_malformed() -> None:
    """Invalid JSON, other JSON values and absurd sizes never raise: they are dead letters."""
    for text in ("{", "[]", '"x"', '{"channel": 5}', '{"channel":"market_trades"}'):
        assert parse_frame(text, ENVELOPE).malformed is not None, text
    huge = parse_frame(DOC_TRADES, ENVELOPE, max_chars=50)
    assert huge.malformed is not None and len(huge.malformed.raw) == 50


@settings(max_examples=300)
@given(value=json_values, channel=st.sampled_from(["market_trades", "heartbeats", "x"]))
def test_any_json_value_parses_without_raising(value: object, channel: str) -> None:
    """Whatever arrives, the parser answers with trades, controls, a kind or a dead letter."""
    for text in (json.dumps(value), json.dumps({"channel": channel, "events": value})):
        parsed = parse_frame(text, ENVELOPE)
        assert parsed == generic_frame(text, ENVELOPE) or parsed.trades


@settings(max_examples=100)
@given(fields=trade_fields())
def test_a_trade_rendered_and_parsed_keeps_its_fields(fields: dict[str, FieldValue]) -> None:
    """parse(render(fields)) == fields: the simulator writes trades as Coinbase does."""
    text = wire.render_market_trades([fields], "update", 1, "2024-01-01T00:00:00Z")
    (trade,) = parse_frame(text, ENVELOPE).trades
    assert {k: trade.fields[k] for k in fields} == fields
