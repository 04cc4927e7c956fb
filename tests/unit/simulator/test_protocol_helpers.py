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
    from k2.simulator.protocols.kraken_v2 import KrakenV2Session, _Symbol, v2_fields

    instrument = KRAKEN_INSTRUMENTS[1]
    trades, _ = SymbolGenerator(instrument, 3).generate(200, 1_700_000_000_000_000)
    session = KrakenV2Session.__new__(KrakenV2Session)
    session._clock, session._numbers = TimestampCache(), {}
    entry = _Symbol(instrument.v2_symbol, instrument, 0)
    fields = [v2_fields(entry.symbol, instrument, trade, TimestampCache()) for trade in trades]
    assert session._texts(entry, trades, "update") == wire.render_v2_trades(fields, "update")
