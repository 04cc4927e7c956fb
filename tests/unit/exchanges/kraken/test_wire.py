"""Rendered Kraken frames are byte for byte what Kraken sends (documented and captured frames)."""

from __future__ import annotations

import json

from k2.exchanges.kraken import wire as kraken


def compact(text: str) -> str:
    """A pretty-printed documentation frame in the exchange's compact wire form (key order kept)."""
    return json.dumps(json.loads(text), separators=(",", ":"))


def test_kraken_v1_trade_frame_matches_the_documented_example() -> None:
    """A rendered Kraken v1 trade frame is byte for byte Kraken's documented example, so the
    simulator speaks the protocol the ingest reads."""
    trades = [
        kraken.v1_trade_fields("5541.20000", "0.15850568", "1534614057.321597", "s", "l"),
        kraken.v1_trade_fields("6060.00000", "0.02455000", "1534614057.324998", "b", "l"),
    ]
    documented = """[0,[["5541.20000","0.15850568","1534614057.321597","s","l",""],
        ["6060.00000","0.02455000","1534614057.324998","b","l",""]],"trade","XBT/USD"]"""
    assert kraken.render_v1_trades(0, "XBT/USD", trades) == compact(documented)


def test_kraken_v1_events_match_recorded_frames() -> None:
    """Kraken v1 status, subscription, heartbeat and pong frames are rendered exactly as Kraken sent
    them in a recorded session."""
    assert kraken.render_v1_system_status(18239578009413566319, "online", "1.8.3") == (
        '{"connectionID":18239578009413566319,"event":"systemStatus","status":"online",'
        '"version":"1.8.3"}'
    )
    assert kraken.render_v1_subscription_status("XMR/USD", 993) == (
        '{"channelID":993,"channelName":"trade","event":"subscriptionStatus","pair":"XMR/USD",'
        '"status":"subscribed","subscription":{"name":"trade"}}'
    )
    assert kraken.render_v1_heartbeat() == '{"event":"heartbeat"}'
    assert kraken.render_v1_pong(42) == '{"event":"pong","reqid":42}'


def test_kraken_v1_rejection_matches_the_captured_error() -> None:
    """A refused Kraken v1 subscription is rendered exactly as Kraken's captured error frame."""
    captured = (
        '{"errorMessage":"Currency pair not in ISO 4217-A3 format XBT-USDT",'
        '"event":"subscriptionStatus","pair":"XBT-USDT","status":"error",'
        '"subscription":{"name":"trade"}}'
    )
    message = "Currency pair not in ISO 4217-A3 format XBT-USDT"
    assert kraken.render_v1_subscription_error("XBT-USDT", message) == captured


def test_kraken_v2_trade_frame_matches_the_documented_example() -> None:
    """A rendered Kraken v2 trade frame is byte for byte Kraken's documented example, numbers as
    bare JSON numbers."""
    documented = """{"channel": "trade", "type": "snapshot", "data": [
        {"symbol": "MATIC/USD", "side": "buy", "price": 0.5147, "qty": 6423.46326,
         "ord_type": "limit", "trade_id": 4665846, "timestamp": "2023-09-25T07:48:36.925533Z"}]}"""
    trade = kraken.v2_trade_fields(
        "MATIC/USD", "buy", "0.5147", "6423.46326", "limit", 4665846, "2023-09-25T07:48:36.925533Z"
    )
    assert kraken.render_v2_trades([trade], "snapshot") == compact(documented)


def test_kraken_v2_prices_keep_every_digit_on_the_wire() -> None:
    """A Kraken v2 price or quantity is written with every digit it has, trailing zeros included."""
    trade = kraken.v2_trade_fields(
        "BTC/USD",
        "sell",
        "65000.100000000000000001",
        "0.10",
        "limit",
        1,
        "2024-01-01T00:00:00.000000Z",
    )
    frame = kraken.render_v2_trades([trade], "update")
    assert '"price":65000.100000000000000001,"qty":0.10,' in frame


def test_kraken_v2_ack_matches_the_captured_frame() -> None:
    """A Kraken v2 subscription acknowledgement is rendered exactly as Kraken's captured frame."""
    captured = (
        '{"method":"subscribe","req_id":0,"result":{"channel":"trade","snapshot":true,'
        '"symbol":"BTC/USD"},"success":true,"time_in":"2024-05-19T19:11:23.034030Z",'
        '"time_out":"2024-05-19T19:11:23.034073Z"}'
    )
    rendered = kraken.render_v2_subscribe_ack(
        "BTC/USD", True, 0, "2024-05-19T19:11:23.034030Z", "2024-05-19T19:11:23.034073Z"
    )
    assert rendered == captured


def test_kraken_v2_status_keeps_the_u64_connection_id() -> None:
    """A Kraken v2 status frame carries its 64-bit unsigned connection id exactly."""
    frame = kraken.render_v2_status(13834774380200032777)
    assert '"connection_id":13834774380200032777' in frame
    assert json.loads(frame)["data"][0]["connection_id"] == 13834774380200032777


def test_kraken_times_are_formatted_to_the_microsecond() -> None:
    """Kraken times are written to the microsecond, in v1's seconds text and v2's RFC 3339."""
    assert kraken.format_time_v1(1534614057_000001) == "1534614057.000001"
    assert kraken.format_timestamp_v2(1695628116_925533) == "2023-09-25T07:48:36.925533Z"


def test_kraken_control_requests_have_the_documented_shape() -> None:
    """Kraken v1 and v2 subscribe and ping requests have the shape Kraken documents."""
    assert json.loads(kraken.v1_subscribe(["XBT/EUR"], 7)) == {
        "event": "subscribe",
        "pair": ["XBT/EUR"],
        "subscription": {"name": "trade"},
        "reqid": 7,
    }
    assert json.loads(kraken.v2_subscribe(["MATIC/USD"], True)) == {
        "method": "subscribe",
        "params": {"channel": "trade", "symbol": ["MATIC/USD"], "snapshot": True},
    }
    assert json.loads(kraken.v1_ping(42)) == {"event": "ping", "reqid": 42}
    assert json.loads(kraken.v2_ping(101)) == {"method": "ping", "req_id": 101}


def test_plain_renderings_equal_the_generic_json() -> None:
    """The direct text of common trades is exactly what json.dumps writes for them."""
    trade = kraken.v2_trade_fields(
        "BTC/USD", "buy", "65000.10", "0.00010000", "limit", 7, "2026-12-01T20:00:00.123456Z"
    )
    frame = kraken.render_v2_trades([trade], "update")
    assert json.loads(frame)["data"][0]["trade_id"] == 7
    assert '"price":65000.10,"qty":0.00010000' in frame
    quoted = dict(trade, symbol='B"C/USD')  # not plain: the generic path escapes it
    assert '"symbol":"B\\"C/USD"' in kraken.render_v2_trades([quoted], "update")
