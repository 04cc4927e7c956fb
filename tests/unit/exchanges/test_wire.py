"""Rendered frames are byte for byte what the venues send (documented and captured frames)."""

from __future__ import annotations

import json

from k2.exchanges.binance import wire as binance
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.kraken import wire as kraken
from k2.exchanges.kraken import wire as kraken_wire


def compact(text: str) -> str:
    """A pretty-printed documentation frame in the venue's compact wire form (key order kept)."""
    return json.dumps(json.loads(text), separators=(",", ":"))


def test_kraken_v1_trade_frame_matches_the_documented_example() -> None:
    trades = [
        kraken.v1_trade_fields("5541.20000", "0.15850568", "1534614057.321597", "s", "l"),
        kraken.v1_trade_fields("6060.00000", "0.02455000", "1534614057.324998", "b", "l"),
    ]
    documented = """[0,[["5541.20000","0.15850568","1534614057.321597","s","l",""],
        ["6060.00000","0.02455000","1534614057.324998","b","l",""]],"trade","XBT/USD"]"""
    assert kraken.render_v1_trades(0, "XBT/USD", trades) == compact(documented)


def test_kraken_v1_events_match_recorded_frames() -> None:
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
    captured = (
        '{"errorMessage":"Currency pair not in ISO 4217-A3 format XBT-USDT",'
        '"event":"subscriptionStatus","pair":"XBT-USDT","status":"error",'
        '"subscription":{"name":"trade"}}'
    )
    message = "Currency pair not in ISO 4217-A3 format XBT-USDT"
    assert kraken.render_v1_subscription_error("XBT-USDT", message) == captured


def test_kraken_v2_trade_frame_matches_the_documented_example() -> None:
    documented = """{"channel": "trade", "type": "snapshot", "data": [
        {"symbol": "MATIC/USD", "side": "buy", "price": 0.5147, "qty": 6423.46326,
         "ord_type": "limit", "trade_id": 4665846, "timestamp": "2023-09-25T07:48:36.925533Z"}]}"""
    trade = kraken.v2_trade_fields(
        "MATIC/USD", "buy", "0.5147", "6423.46326", "limit", 4665846, "2023-09-25T07:48:36.925533Z"
    )
    assert kraken.render_v2_trades([trade], "snapshot") == compact(documented)


def test_kraken_v2_prices_keep_every_digit_on_the_wire() -> None:
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
    frame = kraken.render_v2_status(13834774380200032777)
    assert '"connection_id":13834774380200032777' in frame
    assert json.loads(frame)["data"][0]["connection_id"] == 13834774380200032777


def test_kraken_times_are_formatted_to_the_microsecond() -> None:
    assert kraken.format_time_v1(1534614057_000001) == "1534614057.000001"
    assert kraken.format_timestamp_v2(1695628116_925533) == "2023-09-25T07:48:36.925533Z"


def test_kraken_control_requests_have_the_documented_shape() -> None:
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


def test_binance_combined_trade_matches_the_documented_payload() -> None:
    fields = binance.trade_fields("BNBBTC", 12345, "0.001", "100", 1672515782136, True)
    expected = (
        '{"stream":"bnbbtc@trade","data":{"e":"trade","E":1672515782136,"s":"BNBBTC",'
        '"t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}}'
    )
    assert binance.render_trade(fields, binance.stream_name("BNBBTC", "trade")) == expected


def test_binance_agg_trade_matches_a_recorded_frame() -> None:
    recorded = (
        '{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT",'
        '"a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,'
        '"T":1633998523963,"m":false,"M":true}}'
    )
    fields = binance.agg_trade_fields(
        "NKNUSDT", 15683430, "0.35280000", "58.00000000", 19862790, 19862790, 1633998523963, False
    )
    assert binance.render_agg_trade(fields, "nknusdt@aggTrade") == recorded


def test_binance_results_errors_and_shutdown_have_the_wire_shape() -> None:
    assert binance.render_result(1) == '{"result":null,"id":1}'
    assert binance.render_error(2, "Invalid request: invalid stream", 1) == (
        '{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}'
    )
    assert binance.render_server_shutdown(1770123456789) == (
        '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}'
    )


def test_binance_urls_and_requests() -> None:
    url = binance.combined_stream_url(
        "wss://stream.binance.com:9443", ["btcusdt@trade", "ethusdt@trade"], "MICROSECOND"
    )
    assert url == (
        "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade"
        "&timeUnit=MICROSECOND"
    )
    assert json.loads(binance.subscribe(["btcusdt@aggTrade"], 1)) == {
        "method": "SUBSCRIBE",
        "params": ["btcusdt@aggTrade"],
        "id": 1,
    }


def test_plain_renderings_equal_the_generic_json() -> None:
    """The direct text of common trades is exactly what json.dumps writes for them."""
    fields = binance_wire.trade_fields("BTCUSDT", 12, "0.00100000", "2.5", 1_700_000_000_000, True)
    for stream in (None, "btcusdt@trade"):
        payload = json.dumps(dict(fields), separators=(",", ":"))
        expected = payload if stream is None else f'{{"stream":"{stream}","data":{payload}}}'
        assert binance_wire.render_trade(fields, stream) == expected
    trade = kraken_wire.v2_trade_fields(
        "BTC/USD", "buy", "65000.10", "0.00010000", "limit", 7, "2026-12-01T20:00:00.123456Z"
    )
    frame = kraken_wire.render_v2_trades([trade], "update")
    assert json.loads(frame)["data"][0]["trade_id"] == 7
    assert '"price":65000.10,"qty":0.00010000' in frame
    quoted = dict(trade, symbol='B"C/USD')  # not plain: the generic path escapes it
    assert '"symbol":"B\\"C/USD"' in kraken_wire.render_v2_trades([quoted], "update")
