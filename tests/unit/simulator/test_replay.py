"""Replay: recorded sessions become the exchange's history again, exactly as recorded."""

from __future__ import annotations

import json
from pathlib import Path

from k2.exchanges.binance import EXCHANGE as BINANCE
from k2.exchanges.kraken import EXCHANGE as KRAKEN
from k2.simulator.exchange import ExchangeMarket
from k2.simulator.exchanges.kraken.instruments import KRAKEN_INSTRUMENTS
from k2.simulator.ledger import LedgerEntry
from k2.simulator.replay import ReplaySource, read_recording

RECORDINGS = Path(__file__).resolve().parents[2] / "fixtures" / "recordings"


def _aggtrade_frames(name: str) -> list[dict[str, object]]:
    frames = []
    for line in (RECORDINGS / name).read_text().splitlines()[1:]:
        if not line.strip():
            continue
        frame = json.loads(line.split(": ", 1)[1])
        if frame["data"].get("e") == "aggTrade":
            frames.append(frame["data"])
    return frames


def test_the_kraken_recording_replays_its_ten_trades_exactly() -> None:
    """A recorded Kraken session replays as its ten trades with their exact prices, sizes, sides and
    times."""
    trades = read_recording(RECORDINGS / "KRAKEN.ws.48.0")
    assert len(trades) == 10
    assert {t.symbol for t in trades} == {"XMR/USD", "SC/EUR"}
    first = trades[0]
    assert (first.symbol, first.price, first.qty, first.side, first.ord_type) == (
        "XMR/USD",
        "354.11000000",
        "0.89594024",
        "sell",
        "limit",
    )
    assert first.time_us == 1618678142557535
    assert [t.price for t in trades if t.symbol == "SC/EUR"][:2] == ["0.042990", "0.042980"]


def test_every_binance_aggtrade_frame_is_replayed_with_its_ids() -> None:
    """Every aggregate trade recorded from Binance replays with its exact values, its aggregate and
    trade ids, and the taker side."""
    for name, count in (("BINANCE.ws.1.0", 2), ("BINANCE_US.ws.1.0", 11)):
        trades = read_recording(RECORDINGS / name)
        frames = _aggtrade_frames(name)
        assert len(trades) == len(frames) == count
        for trade, frame in zip(trades, frames, strict=True):
            assert (trade.symbol, trade.price, trade.qty) == (frame["s"], frame["p"], frame["q"])
            assert trade.agg == (frame["a"], frame["f"], frame["l"])
            assert trade.time_us == frame["T"] * 1000  # type: ignore[operator]
            assert trade.side == ("sell" if frame["m"] else "buy")


def test_a_ledger_replays_as_k2_jsonl(tmp_path: Path) -> None:
    """A simulator ledger replays as the trades it recorded, from every exchange and protocol."""
    entries = [
        LedgerEntry(
            KRAKEN,
            "kraken-v2",
            "BTC/USD",
            7,
            {
                "symbol": "BTC/USD",
                "side": "buy",
                "price": "64000.1",
                "qty": "0.5",
                "ord_type": "limit",
                "trade_id": 7,
                "timestamp": "2024-05-19T19:11:23.034030Z",
            },
            1,
            "kraken-v2#1",
        ),
        LedgerEntry(
            BINANCE,
            "binance-trade",
            "BTCUSDT",
            9,
            {
                "e": "trade",
                "E": 1716145883034,
                "s": "BTCUSDT",
                "t": 9,
                "p": "64000.10000000",
                "q": "0.50000000",
                "T": 1716145883034,
                "m": True,
                "M": True,
            },
            2,
            "binance#2",
        ),
        LedgerEntry(
            KRAKEN,
            "kraken-v1",
            "XBT/USD",
            5,
            {
                "price": "64000.10000",
                "volume": "0.50000000",
                "time": "1716146483.034030",
                "side": "s",
                "order_type": "m",
                "misc": "",
            },
            3,
            "kraken-v1#3",
        ),
    ]
    path = tmp_path / "session.jsonl"
    path.write_text("".join(entry.to_json() + "\n" for entry in entries))
    v2, binance, v1 = read_recording(path)
    assert (v2.symbol, v2.price, v2.qty, v2.trade_id, v2.time_us) == (
        "BTC/USD",
        "64000.1",
        "0.5",
        7,
        1716145883034030,
    )
    assert (binance.trade_id, binance.price, binance.side, binance.time_us) == (
        9,
        "64000.10000000",
        "sell",
        1716145883034000,
    )
    assert (v1.symbol, v1.trade_id, v1.side, v1.ord_type) == ("XBT/USD", 5, "sell", "market")


def test_replay_lists_unknown_pairs_and_numbers_v1_trades() -> None:
    """A replayed pair the catalogue does not list is added to the exchange, and Kraken v1 trades,
    which have no ids, are numbered in order."""
    market = ExchangeMarket(KRAKEN, KRAKEN_INSTRUMENTS[:1], retention=1000)
    source = ReplaySource(market, read_recording(RECORDINGS / "KRAKEN.ws.48.0"), 0, 1000)
    market.sources.append(source)
    market.advance(1, 0)
    assert source.remaining == 0
    xmr = market.histories["XMR/USD"]
    assert [t.trade_id for t in xmr.trades] == [1, 2, 3, 4]
    assert xmr.trades[0].price == "354.11000000"
    assert market.instruments["XMR/USD"].v2_symbol == "XMR/USD"


def test_replay_follows_the_recorded_pace() -> None:
    """A replay at speed 1 sends each trade when the recording says it came."""
    market = ExchangeMarket(KRAKEN, (), retention=1000)
    source = ReplaySource(market, read_recording(RECORDINGS / "KRAKEN.ws.48.0"), 1.0, 1000)
    market.sources.append(source)
    start = 1_000_000_000_000_000
    market.advance(start, 0)
    assert source.remaining == 9  # only the first trade is due at once
    market.advance(start + 4_000_000, 0)  # the next ones came 3.2 s and 3.4 s later
    assert source.remaining == 7
