"""The simulated Bybit spot exchange: its templates write what the wire module renders, its ids
are one counter shared by every symbol, and recorded frames replay with their exact values."""

from __future__ import annotations

import json
from pathlib import Path

from k2.exchanges.base import Envelope
from k2.exchanges.bybit import wire
from k2.exchanges.bybit.parse import parse_frame
from k2.simulator.instruments import catalog
from k2.simulator.market import SymbolGenerator
from k2.simulator.replay import ReplaySource, read_recording
from k2.simulator.venue import VenueMarket
from k2.simulator.venues.bybit.ids import STRIDE, SharedIds, per_symbol
from k2.simulator.venues.bybit.instruments import BYBIT_INSTRUMENTS
from k2.simulator.venues.bybit.replay import ledger_trades
from k2.simulator.venues.bybit.ws import SIDES

RECORDINGS = Path(__file__).resolve().parents[4] / "fixtures" / "recordings"
ENVELOPE = Envelope(1, "c", 0, "bybit-spot")


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


def test_ids_are_one_counter_unique_across_symbols_and_rising_per_symbol() -> None:
    """Every symbol's ids rise, no two symbols share one, and each maps back to its own id."""
    symbols = [inst.symbol for inst in catalog("bybit")]
    assert len(symbols) <= STRIDE
    ids = SharedIds(symbols)
    seen = {ids.shared(symbol, n) for symbol in symbols for n in (7, 8)}
    assert len(seen) == 2 * len(symbols)
    assert all(ids.shared(s, 8) - ids.shared(s, 7) == STRIDE for s in symbols)
    assert per_symbol(ids.shared("ETHUSDT", 12345)) == 12345


def test_the_legacy_recording_replays_its_101_trades_as_v5_pushes() -> None:
    """The legacy feed's 101 recorded trades replay with their exact prices, sizes (sent as
    numbers, kept as their decimal text), times and taker sides, and render as v5 pushes that
    parse back to those values."""
    recorded = read_recording(RECORDINGS / "BYBIT.ws.25.0.trades")
    assert len(recorded) == 101
    lines = [
        json.loads(line.split(": ", 1)[1])
        for line in (RECORDINGS / "BYBIT.ws.25.0.trades").read_text().splitlines()[1:]
        if '"topic":"trade.' in line
    ]
    sent = [item for frame in lines for item in frame["data"]]
    assert [(t.symbol, t.price, t.time_us // 1000, t.side) for t in recorded] == [
        (d["symbol"], d["price"], int(d["trade_time_ms"]), d["side"].lower()) for d in sent
    ]
    assert {t.qty for t in recorded} >= {"0.14", "0.82"}
    market = VenueMarket("bybit", (), 1000)
    source = ReplaySource(market, recorded, 0, 1000)
    batches = source.advance(1, 0)
    ids = SharedIds(market.instruments)
    parsed = []
    for symbol, trades, _ in batches:
        fields = [
            wire.trade_fields(symbol, ids.text(symbol, t.trade_id), t.price, t.qty,
                              t.time_us // 1000, SIDES[t.side], t.trade_id)
            for t in trades
        ]  # fmt: skip
        parsed += parse_frame(wire.render_trades(fields), ENVELOPE).trades
    assert len(parsed) == 101
    assert sorted((t.fields["s"], t.fields["p"], t.fields["v"]) for t in parsed) == sorted(
        (t.symbol, t.price, t.qty) for t in recorded
    )


def test_a_ledger_line_replays_with_its_own_per_symbol_id() -> None:
    """A ledger line of Bybit replays with the per-symbol number its shared id was made of."""
    ids = SharedIds(["BTCUSDT", "ETHUSDT"])
    shared = ids.text("ETHUSDT", 42)
    fields = wire.trade_fields("ETHUSDT", shared, "2500.5", "0.1", 1_700_000_000_000, "Sell", 42)
    (trade,) = ledger_trades({"exchange": "bybit", "fields": fields, "emit_us": 5})
    assert (trade.trade_id, trade.side, trade.price, trade.at_us) == (42, "sell", "2500.5", 5)
