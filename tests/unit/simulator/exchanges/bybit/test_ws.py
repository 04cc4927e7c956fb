"""The simulated Bybit spot stream: its templates write what the wire module renders."""

from __future__ import annotations

from k2.exchanges.bybit import wire
from k2.simulator.exchanges.bybit.ids import SharedIds
from k2.simulator.exchanges.bybit.instruments import BYBIT_INSTRUMENTS
from k2.simulator.exchanges.bybit.ws import SIDES
from k2.simulator.market import SymbolGenerator


def test_pushes_from_the_templates_are_the_rendered_pushes() -> None:
    """A connection without a ledger formats pushes from templates: the same text as rendering
    the trades' fields."""
    ids = SharedIds(inst.symbol for inst in BYBIT_INSTRUMENTS)
    for instrument in BYBIT_INSTRUMENTS:
        symbol = instrument.symbol
        trades, _ = SymbolGenerator(instrument, 5).generate(30, 1_700_000_000_000_000)
        frame, item = wire.trades_template(symbol), wire.trade_object_template(symbol)
        assert frame is not None and item is not None
        objects = ",".join(
            item % (ids.text(symbol, t.trade_id), t.time_us // 1000, t.price, t.qty,
                    SIDES[t.side], t.trade_id)
            for t in trades
        )  # fmt: skip
        last_ms = trades[-1].time_us // 1000
        fields = [
            wire.trade_fields(symbol, ids.text(symbol, t.trade_id), t.price, t.qty,
                              t.time_us // 1000, SIDES[t.side], t.trade_id, last_ms)
            for t in trades
        ]  # fmt: skip
        assert frame % (trades[-1].time_us // 1000, objects) == wire.render_trades(fields)
