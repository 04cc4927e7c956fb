"""Helpers of the simulated OKX agree with the wire module they stand in for."""

from __future__ import annotations

from k2.exchanges.okx import wire
from k2.simulator.exchanges.okx.instruments import OKX_INSTRUMENTS
from k2.simulator.exchanges.okx.ws import okx_decimal
from k2.simulator.market import SymbolGenerator


def test_numbers_are_printed_as_okx_prints_them() -> None:
    """The simulated OKX prints numbers as OKX does, without trailing zeros."""
    assert okx_decimal("30236.0") == "30236" and okx_decimal("0.00020000") == "0.0002"
    assert okx_decimal("12") == "12" and okx_decimal("0.50") == "0.5"


def test_frames_from_the_template_are_the_rendered_frames() -> None:
    """A connection without a ledger formats each trades-all push from a template: the same
    text as rendering the trade's fields."""
    for instrument in OKX_INSTRUMENTS:
        trades, _ = SymbolGenerator(instrument, 5).generate(300, 1_700_000_000_000_000)
        template = wire.trade_template(wire.ALL_TRADES, instrument.symbol)
        assert template is not None
        for trade in trades:
            px, sz, ms = okx_decimal(trade.price), okx_decimal(trade.qty), trade.time_us // 1000
            fields = wire.trade_fields(instrument.symbol, trade.trade_id, px, sz, trade.side, ms)
            rendered = wire.render_trades(wire.ALL_TRADES, instrument.symbol, [fields])
            assert template % (trade.trade_id, px, sz, trade.side, "0", ms) == rendered
