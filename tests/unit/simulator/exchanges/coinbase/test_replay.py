"""Coinbase recordings and ledgers replay as the exchange's history, with the taker's side."""

from __future__ import annotations

import json
from pathlib import Path

from k2.exchanges.coinbase import wire
from k2.exchanges.values import rfc3339_micros
from k2.simulator.ledger import LedgerEntry
from k2.simulator.replay import read_recording
from tests.unit.exchanges.coinbase.strategies import RECORDING, recorded_matches

RECORDINGS = Path(__file__).resolve().parents[4] / "fixtures" / "recordings"


def test_the_recorded_exchange_feed_replays_every_trade_with_the_takers_side() -> None:
    """Each recorded match is a trade of its product, its id, values and time kept; its side
    the taker's (the recording names the maker's)."""
    trades = read_recording(RECORDINGS / RECORDING)
    matches = recorded_matches()
    assert len(trades) == len(matches) == 107
    for trade, match in zip(trades, matches, strict=True):
        assert (trade.exchange, trade.symbol, trade.trade_id) == (
            "coinbase", match["product_id"], match["trade_id"],
        )  # fmt: skip
        assert (trade.price, trade.qty) == (match["price"], match["size"])
        assert trade.time_us == rfc3339_micros(match["time"], "t")
        assert trade.side == ("sell" if match["side"] == "buy" else "buy")


def test_a_ledger_of_market_trades_replays_as_k2_jsonl(tmp_path: Path) -> None:
    """A ledger line keeps its values; its upper-case side is the maker's, the taker's the other."""
    fields = wire.trade_fields(41, "BTC-USD", "65000.01", "0.5", "SELL", "2024-05-01T00:00:00.5Z")
    entry = LedgerEntry("coinbase", "coinbase-advanced", "BTC-USD", 41, fields, 7, "c#1")
    path = tmp_path / "ledger.jsonl"
    path.write_text(entry.to_json() + "\n")
    (trade,) = read_recording(path)
    assert (trade.symbol, trade.trade_id, trade.price, trade.qty) == ("BTC-USD", 41, "65000.01",
                                                                      "0.5")  # fmt: skip
    assert trade.side == "buy" and trade.at_us == 7
    assert json.loads(path.read_text())["fields"]["side"] == "SELL"
