"""Bybit recordings and ledgers replay with their exact values and their own per-symbol ids."""

from __future__ import annotations

import json
from pathlib import Path

from k2.exchanges.base import Envelope
from k2.exchanges.bybit import wire
from k2.exchanges.bybit.parse import parse_frame
from k2.simulator.exchange import ExchangeMarket
from k2.simulator.exchanges.bybit.ids import SharedIds
from k2.simulator.exchanges.bybit.replay import ledger_trades
from k2.simulator.exchanges.bybit.ws import SIDES
from k2.simulator.replay import ReplaySource, read_recording

RECORDINGS = Path(__file__).resolve().parents[4] / "fixtures" / "recordings"
ENVELOPE = Envelope(1, "c", 0, "bybit-spot")


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
    market = ExchangeMarket("bybit", (), 1000)
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
