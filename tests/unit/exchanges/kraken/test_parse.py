"""Kraken frames parse to exactly the trades they hold: the recorded v1 session, round trips
through the v1 and v2 wire formats, and any input without raising."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2.domain import micros_from_datetime
from k2.exchanges.base import ControlKind, Envelope, FieldValue, Protocol_
from k2.exchanges.kraken import wire as kraken_wire
from k2.exchanges.kraken.normalise import normalise_trade as normalise_kraken
from k2.exchanges.kraken.normalise import parse_rfc3339_micros, parse_v1_time_micros
from k2.exchanges.kraken.parse import parse_v1_frame, parse_v2_frame
from tests.unit.exchanges.kraken.strategies import (
    kraken_v1_fields,
    kraken_v1_pairs,
    kraken_v2_fields,
)
from tests.unit.exchanges.recordings import received_frames

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KRAKEN_V1 = Envelope(
    received_us=1_618_678_142_592_855, connection_id="c", position=0, protocol="kraken-v1"
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


def envelope(protocol: Protocol_) -> Envelope:
    return Envelope(
        received_us=1_700_000_000_000_000, connection_id="c", position=0, protocol=protocol
    )


@SETTINGS
@given(pair=kraken_v1_pairs, trades=st.lists(kraken_v1_fields(), min_size=1, max_size=5))
def test_kraken_v1_render_then_parse_gives_the_same_trades(
    pair: str, trades: list[dict[str, FieldValue]]
) -> None:
    """Any Kraken v1 trade frame parses back to exactly the trades it carries, with their exact
    prices and times."""
    frame = kraken_wire.render_v1_trades(42, pair, trades)
    parsed = parse_v1_frame(frame, envelope("kraken-v1"))
    assert [dict(t.fields) for t in parsed.trades] == trades
    assert {t.native_symbol for t in parsed.trades} == {pair}
    for raw, sent in zip(parsed.trades, trades, strict=True):
        unified = normalise_kraken(raw)
        assert micros_from_datetime(unified.exchange_ts) == parse_v1_time_micros(str(sent["time"]))
        assert str(unified.price) == sent["price"]


@SETTINGS
@given(trades=st.lists(kraken_v2_fields(), min_size=1, max_size=5), snapshot=st.booleans())
def test_kraken_v2_render_then_parse_gives_the_same_trades(
    trades: list[dict[str, FieldValue]], snapshot: bool
) -> None:
    """Any Kraken v2 trade frame parses back to exactly the trades it carries, with their ids,
    snapshot flag, exact quantities and times."""
    frame = kraken_wire.render_v2_trades(trades, "snapshot" if snapshot else "update")
    parsed = parse_v2_frame(frame, envelope("kraken-v2"))
    assert [dict(t.fields) for t in parsed.trades] == trades
    assert [t.trade_key for t in parsed.trades] == [t["trade_id"] for t in trades]
    assert all(t.snapshot is snapshot for t in parsed.trades)
    for raw, sent in zip(parsed.trades, trades, strict=True):
        unified = normalise_kraken(raw)
        assert str(unified.quantity) == sent["qty"]
        assert micros_from_datetime(unified.exchange_ts) == parse_rfc3339_micros(
            str(sent["timestamp"])
        )


def test_kraken_v1_recording_holds_exactly_its_ten_trades() -> None:
    """A real recorded Kraken v1 session parses to exactly its ten trades, as text, with nothing
    malformed or unknown."""
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
    """The control frames of a recorded Kraken v1 session are its status (with the exact 64-bit
    connection id), one ack per pair, then heartbeats."""
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
