"""Rendered Binance frames are byte for byte what Binance sends (documented and recorded frames)."""

from __future__ import annotations

import json

from k2.exchanges.binance import wire as binance


def test_binance_combined_trade_matches_the_documented_payload() -> None:
    """A rendered Binance combined-stream trade is byte for byte Binance's documented payload."""
    fields = binance.trade_fields("BNBBTC", 12345, "0.001", "100", 1672515782136, True)
    expected = (
        '{"stream":"bnbbtc@trade","data":{"e":"trade","E":1672515782136,"s":"BNBBTC",'
        '"t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}}'
    )
    assert binance.render_trade(fields, binance.stream_name("BNBBTC", "trade")) == expected


def test_binance_agg_trade_matches_a_recorded_frame() -> None:
    """A rendered Binance aggregate trade is byte for byte a frame recorded from Binance."""
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
    """Binance request results, errors and the server-shutdown event are rendered as Binance sends
    them."""
    assert binance.render_result(1) == '{"result":null,"id":1}'
    assert binance.render_error(2, "Invalid request: invalid stream", 1) == (
        '{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}'
    )
    assert binance.render_server_shutdown(1770123456789) == (
        '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}'
    )


def test_binance_urls_and_requests() -> None:
    """A Binance combined-stream URL names every stream and the time unit, and a subscribe request
    has Binance's shape."""
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
    fields = binance.trade_fields("BTCUSDT", 12, "0.00100000", "2.5", 1_700_000_000_000, True)
    for stream in (None, "btcusdt@trade"):
        payload = json.dumps(dict(fields), separators=(",", ":"))
        expected = payload if stream is None else f'{{"stream":"{stream}","data":{payload}}}'
        assert binance.render_trade(fields, stream) == expected
