"""Formatting helpers of the protocols agree with the wire module they stand in for."""

from __future__ import annotations

import pytest

from k2.exchanges.kraken import wire
from k2.simulator.protocols.binance import BadConnectRequestError, connect_request
from k2.simulator.protocols.binance_rest import quote_quantity
from k2.simulator.protocols.kraken_v2 import TimestampCache, v2_decimal


def test_cached_v2_timestamps_equal_the_wire_format() -> None:
    cache = TimestampCache()
    for micros in (1_700_000_000_000_000, 1_700_000_000_123_456, 1_700_000_001_000_001, 5):
        assert cache.format(micros) == wire.format_timestamp_v2(micros)


def test_v2_numbers_carry_engine_precision() -> None:
    assert v2_decimal("64281.90000", 1) == "64281.9"
    assert v2_decimal("0.51470000", 4) == "0.5147"
    assert v2_decimal("5.00000000", 1) == "5.0"
    assert v2_decimal("12", 2) == "12"


def test_binance_quote_quantity_is_exact() -> None:
    assert quote_quantity("4.00000100", "12.00000000") == "48.000012"
    assert quote_quantity("100.00000000", "2.00000000") == "200"


def test_binance_connect_urls() -> None:
    raw = connect_request("btcusdt@trade/ethusdt@aggTrade", False, {})
    assert raw.streams == ("btcusdt@trade", "ethusdt@aggTrade") and not raw.micros
    combined = connect_request("btcusdt@trade", True, {"timeUnit": "microsecond"})
    assert combined.combined and combined.micros
    with pytest.raises(BadConnectRequestError):
        connect_request("@@@lixo###", True, {})
    with pytest.raises(BadConnectRequestError):
        connect_request("btcusdt@trade", True, {"timeUnit": "NANOSECOND"})


def test_v2_frames_without_a_ledger_are_the_frames_with_one() -> None:
    """The simulator's direct v2 text equals the frame rendered from each trade's fields."""
    from k2.simulator.instruments import KRAKEN_INSTRUMENTS
    from k2.simulator.market import SymbolGenerator
    from k2.simulator.protocols.kraken_v2 import TradeFrameWriter, v2_fields

    writer = TradeFrameWriter()
    for instrument in KRAKEN_INSTRUMENTS:
        generator = SymbolGenerator(instrument, 3)
        for start in (1_700_000_000_000_000, 1_700_000_000_999_990):  # within and across seconds
            trades, _ = generator.generate(200, start)
            symbol = instrument.v2_symbol
            fields = [v2_fields(symbol, instrument, trade, TimestampCache()) for trade in trades]
            expected = wire.render_v2_trades(fields, "update")
            assert writer.frame(symbol, instrument, trades, "update") == expected


def test_binance_trade_frames_from_the_template_are_the_rendered_frames() -> None:
    """A connection without a ledger formats each @trade frame from a template: the same text
    as rendering the trade's fields, raw or combined, in ms or µs."""
    from k2.exchanges.binance import wire as binance_wire
    from k2.simulator.instruments import BINANCE_INSTRUMENTS
    from k2.simulator.market import SymbolGenerator

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
