"""Helpers of the simulated Binance streams agree with the wire module they stand in for."""

from __future__ import annotations

import pytest

from k2.exchanges.binance import wire as binance_wire
from k2.simulator.exchanges.binance.instruments import BINANCE_INSTRUMENTS
from k2.simulator.exchanges.binance.ws import BadConnectRequestError, connect_request
from k2.simulator.market import SymbolGenerator


def test_binance_connect_urls() -> None:
    """The simulated Binance reads a connect URL's streams and time unit, and refuses a malformed
    stream or an unknown time unit."""
    raw = connect_request("btcusdt@trade/ethusdt@aggTrade", False, {})
    assert raw.streams == ("btcusdt@trade", "ethusdt@aggTrade") and not raw.micros
    combined = connect_request("btcusdt@trade", True, {"timeUnit": "microsecond"})
    assert combined.combined and combined.micros
    with pytest.raises(BadConnectRequestError):
        connect_request("@@@lixo###", True, {})
    with pytest.raises(BadConnectRequestError):
        connect_request("btcusdt@trade", True, {"timeUnit": "NANOSECOND"})


def test_binance_trade_frames_from_the_template_are_the_rendered_frames() -> None:
    """A connection without a ledger formats each @trade frame from a template: the same text
    as rendering the trade's fields, raw or combined, in ms or µs."""
    for instrument in BINANCE_INSTRUMENTS:
        trades, _ = SymbolGenerator(instrument, 5).generate(300, 1_700_000_000_000_000)
        for stream in (None, instrument.symbol.lower() + "@trade"):
            template = binance_wire.trade_template(instrument.symbol, stream)
            assert template is not None
            for trade in trades:
                for when in (trade.time_us, trade.time_us // 1000):
                    maker = trade.side == "sell"
                    fields = binance_wire.trade_fields(
                        instrument.symbol, trade.trade_id, trade.price, trade.qty, when, maker
                    )
                    values = (when, trade.trade_id, trade.price, trade.qty, when,
                              "true" if maker else "false", "true")  # fmt: skip
                    assert template % values == binance_wire.render_trade(fields, stream)
