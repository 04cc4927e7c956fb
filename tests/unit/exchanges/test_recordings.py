"""Real recorded sessions parse to exactly the trades they hold, with exact decimal strings."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from k2.exchanges.base import ControlKind, Envelope
from k2.exchanges.binance.normalise import normalise_trade as normalise_binance
from k2.exchanges.binance.parse import parse_frame as parse_binance
from k2.exchanges.kraken.normalise import V1OccurrenceCounter
from k2.exchanges.kraken.normalise import normalise_trade as normalise_kraken
from k2.exchanges.kraken.parse import parse_v1_frame

from .recordings import received_frames

KRAKEN_V1 = Envelope(
    received_us=1_618_678_142_592_855, connection_id="c", position=0, protocol="kraken-v1"
)
BINANCE_AGG = Envelope(
    received_us=1_633_998_523_957_215, connection_id="c", position=0, protocol="binance-aggtrade"
)

# The 10 trades of KRAKEN.ws.48.0, read off the file by eye: (pair, price, volume, time, side,
# order type).
KRAKEN_TRADES = [
    ("XMR/USD", "354.11000000", "0.89594024", "1618678142.557535", "s", "l"),
    ("XMR/USD", "354.55000000", "1.25690315", "1618678145.715785", "b", "m"),
    ("SC/EUR", "0.042990", "15979.71727919", "1618678145.920708", "s", "l"),
    ("XMR/USD", "354.04000000", "0.28245396", "1618678150.826417", "s", "m"),
    ("XMR/USD", "353.81000000", "1.71754604", "1618678150.827816", "s", "m"),
    ("SC/EUR", "0.042980", "8500.00000000", "1618678155.718950", "b", "m"),
    ("SC/EUR", "0.043000", "2383.16665529", "1618678155.720582", "b", "m"),
    ("SC/EUR", "0.043030", "1081.72663000", "1618678157.908269", "b", "l"),
    ("SC/EUR", "0.042960", "5000.00000000", "1618678157.946108", "s", "m"),
    ("SC/EUR", "0.043040", "20000.00000000", "1618678158.135041", "b", "l"),
]


def test_kraken_v1_recording_holds_exactly_its_ten_trades() -> None:
    parsed = [parse_v1_frame(frame, KRAKEN_V1) for frame in received_frames("KRAKEN.ws.48.0")]
    trades = [trade for frame in parsed for trade in frame.trades]
    got = [
        (
            t.native_symbol,
            *(str(t.fields[name]) for name in ("price", "volume", "time", "side", "order_type")),
        )
        for t in trades
    ]
    assert got == KRAKEN_TRADES
    assert all(trade.fields["misc"] == "" for trade in trades)
    assert not any(frame.malformed or frame.unknown_kind for frame in parsed)


def test_kraken_v1_recording_controls_are_status_acks_and_heartbeats() -> None:
    frames = [parse_v1_frame(frame, KRAKEN_V1) for frame in received_frames("KRAKEN.ws.48.0")]
    controls = [control for frame in frames for control in frame.controls]
    status = controls[0]
    assert status.kind == ControlKind.STATUS
    assert status.detail["connection_id"] == 18239578009413566319  # u64, exact
    acks = [c.symbol for c in controls if c.kind == ControlKind.SUBSCRIBED]
    assert acks == [
        "WAVES/EUR",
        "XMR/USD",
        "KSM/XBT",
        "GRT/ETH",
        "SC/EUR",
        "ETH/CHF",
        "OCEAN/XBT",
        "OMG/USD",
        "XBT/CHF",
        "ADA/XBT",
    ]
    assert {c.kind for c in controls[11:]} == {ControlKind.HEARTBEAT}


def test_kraken_v1_recorded_trades_normalise_exactly() -> None:
    counter = V1OccurrenceCounter()
    frames = received_frames("KRAKEN.ws.48.0")
    trades = [counter.assign(t) for f in frames for t in parse_v1_frame(f, KRAKEN_V1).trades]
    unified = [normalise_kraken(trade) for trade in trades]
    first = unified[0]
    assert (first.symbol, first.base, first.quote) == ("XMR/USD", "XMR", "USD")
    assert first.price == Decimal("354.11000000")
    assert first.quote_quantity == Decimal("354.11") * Decimal("0.89594024")
    assert first.side == "sell"
    assert first.order_type == "limit"
    assert first.trade_id is None
    assert first.exchange_ts.timestamp() == pytest.approx(1618678142.557535)
    assert first.exchange_ts.microsecond == 557535
    assert len({trade.message_id for trade in unified}) == 10


def _binance_agg_frames() -> list[str]:
    frames = received_frames("BINANCE.ws.1.0") + received_frames("BINANCE_US.ws.1.0")
    return [frame for frame in frames if '"e":"aggTrade"' in frame]


def test_every_recorded_binance_agg_trade_frame_is_its_trade() -> None:
    frames = _binance_agg_frames()
    assert len(frames) == 2 + 11
    for frame in frames:
        parsed = parse_binance(frame, BINANCE_AGG)
        assert parsed.malformed is None
        (trade,) = parsed.trades
        data = json.loads(frame)["data"]
        assert dict(trade.fields) == data
        # exact decimal text, as it appears in the frame
        assert f'"p":"{trade.fields["p"]}"' in frame
        assert f'"q":"{trade.fields["q"]}"' in frame
        assert trade.trade_key == int(re.search(r'"a":(\d+)', frame).group(1))  # type: ignore[union-attr]
        assert trade.native_symbol == data["s"]


def test_binance_recordings_other_streams_are_unknown_kinds_not_errors() -> None:
    frames = received_frames("BINANCE.ws.1.0") + received_frames("BINANCE_US.ws.1.0")
    kinds = {parse_binance(frame, BINANCE_AGG).unknown_kind for frame in frames}
    assert kinds == {None, "event:depthUpdate", "event:kline", "stream:bookTicker"}


def test_recorded_binance_agg_trades_normalise_exactly() -> None:
    frame = _binance_agg_frames()[0]
    (raw,) = parse_binance(frame, BINANCE_AGG).trades
    trade = normalise_binance(raw, {"NKNUSDT": ("NKN", "USDT")})
    assert trade.message_id == "binance:NKNUSDT:agg-15683430"
    assert (trade.symbol, trade.price, trade.quantity) == (
        "NKN/USDT",
        Decimal("0.35280000"),
        Decimal("58.00000000"),
    )
    assert trade.quote_quantity == Decimal("20.4624000000000000")
    assert trade.side == "buy"  # m=false: the buyer was the taker
    assert trade.exchange_ts.microsecond == 963_000
