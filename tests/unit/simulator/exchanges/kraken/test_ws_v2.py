"""Formatting helpers of the simulated Kraken v2 agree with the wire module they stand in for."""

from __future__ import annotations

from k2.exchanges.kraken import wire
from k2.simulator.exchanges.kraken.instruments import KRAKEN_INSTRUMENTS
from k2.simulator.exchanges.kraken.ws_v2 import (
    TimestampCache,
    TradeFrameWriter,
    v2_decimal,
    v2_fields,
)
from k2.simulator.market import SymbolGenerator


def test_cached_v2_timestamps_equal_the_wire_format() -> None:
    """The simulated Kraken's cached v2 timestamps are exactly the wire format's."""
    cache = TimestampCache()
    for micros in (1_700_000_000_000_000, 1_700_000_000_123_456, 1_700_000_001_000_001, 5):
        assert cache.format(micros) == wire.format_timestamp_v2(micros)


def test_v2_numbers_carry_engine_precision() -> None:
    """The simulated Kraken v2 writes numbers with the engine's precision, as Kraken does."""
    assert v2_decimal("64281.90000", 1) == "64281.9"
    assert v2_decimal("0.51470000", 4) == "0.5147"
    assert v2_decimal("5.00000000", 1) == "5.0"
    assert v2_decimal("12", 2) == "12"


def test_v2_frames_without_a_ledger_are_the_frames_with_one() -> None:
    """The simulator's direct v2 text equals the frame rendered from each trade's fields."""
    writer = TradeFrameWriter()
    for instrument in KRAKEN_INSTRUMENTS:
        generator = SymbolGenerator(instrument, 3)
        for start in (1_700_000_000_000_000, 1_700_000_000_999_990):  # within and across seconds
            trades, _ = generator.generate(200, start)
            symbol = instrument.v2_symbol
            fields = [v2_fields(symbol, instrument, trade, TimestampCache()) for trade in trades]
            expected = wire.render_v2_trades(fields, "update")
            assert writer.frame(symbol, instrument, trades, "update") == expected
