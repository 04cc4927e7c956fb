"""Round trips through each venue's wire format, and parsers that never raise on any input."""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2.domain import micros_from_datetime
from k2.exchanges.base import Envelope, FieldValue, ParsedFrame, Protocol_
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.binance.normalise import normalise_trade as normalise_binance
from k2.exchanges.binance.normalise import trade_time_micros
from k2.exchanges.binance.parse import parse_frame as parse_binance
from k2.exchanges.kraken import wire as kraken_wire
from k2.exchanges.kraken.normalise import normalise_trade as normalise_kraken
from k2.exchanges.kraken.normalise import parse_rfc3339_micros, parse_v1_time_micros
from k2.exchanges.kraken.parse import parse_v1_frame, parse_v2_frame

from .strategies import (
    binance_agg_trade_fields,
    binance_trade_fields,
    json_values,
    kraken_v1_fields,
    kraken_v1_pairs,
    kraken_v2_fields,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def envelope(protocol: Protocol_) -> Envelope:
    return Envelope(
        received_us=1_700_000_000_000_000, connection_id="c", position=0, protocol=protocol
    )


@SETTINGS
@given(pair=kraken_v1_pairs, trades=st.lists(kraken_v1_fields(), min_size=1, max_size=5))
def test_kraken_v1_render_then_parse_gives_the_same_trades(
    pair: str, trades: list[dict[str, FieldValue]]
) -> None:
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


@SETTINGS
@given(fields=binance_trade_fields(), combined=st.booleans())
def test_binance_trade_render_then_parse_gives_the_same_trade(
    fields: dict[str, FieldValue], combined: bool
) -> None:
    stream = binance_wire.stream_name(str(fields["s"]), "trade") if combined else None
    parsed = parse_binance(binance_wire.render_trade(fields, stream), envelope("binance-trade"))
    (trade,) = parsed.trades
    assert dict(trade.fields) == fields
    assert trade.trade_key == fields["t"]
    unified = normalise_binance(trade)
    assert str(unified.price) == fields["p"]
    assert unified.side == ("sell" if fields["m"] else "buy")
    assert micros_from_datetime(unified.exchange_ts) == trade_time_micros(int(str(fields["T"])))


@SETTINGS
@given(fields=binance_agg_trade_fields(), combined=st.booleans())
def test_binance_agg_trade_render_then_parse_gives_the_same_trade(
    fields: dict[str, FieldValue], combined: bool
) -> None:
    stream = binance_wire.stream_name(str(fields["s"]), "aggTrade") if combined else None
    frame = binance_wire.render_agg_trade(fields, stream)
    (trade,) = parse_binance(frame, envelope("binance-aggtrade")).trades
    assert dict(trade.fields) == fields
    assert trade.trade_key == fields["a"]
    assert normalise_binance(trade).message_id.endswith(f":agg-{fields['a']}")


PARSERS: dict[Protocol_, Callable[[str, Envelope], ParsedFrame]] = {
    "kraken-v1": parse_v1_frame,
    "kraken-v2": parse_v2_frame,
    "binance-trade": parse_binance,
    "binance-aggtrade": parse_binance,
}

arbitrary_text = st.one_of(
    st.text(),
    st.binary().map(lambda b: b.decode("utf-8", "replace")),
    json_values.map(json.dumps),
)


@SETTINGS
@given(text=arbitrary_text, protocol=st.sampled_from(list(PARSERS)))
def test_parsers_never_raise_on_arbitrary_input(text: str, protocol: Protocol_) -> None:
    parsed = PARSERS[protocol](text, envelope(protocol))
    produced = [
        bool(parsed.trades),
        bool(parsed.controls),
        parsed.malformed is not None,
        parsed.unknown_kind is not None,
    ]
    assert sum(produced) >= 1 or parsed == ParsedFrame()
    if parsed.malformed is not None:
        assert parsed.malformed.raw == text


@SETTINGS
@given(fields=binance_trade_fields(), cut=st.integers(min_value=1, max_value=60))
def test_truncated_trade_frames_are_malformed_with_their_text(
    fields: dict[str, FieldValue], cut: int
) -> None:
    frame = binance_wire.render_trade(fields, "x@trade")[:-cut]
    parsed = parse_binance(frame, envelope("binance-trade"))
    assert parsed.malformed is not None
    assert parsed.malformed.raw == frame
    assert not parsed.trades


def test_absurdly_large_frames_are_malformed_and_truncated() -> None:
    frame = '{"e":"trade","s":"' + "A" * 5000 + '"}'
    for protocol, parse in PARSERS.items():
        parsed = parse(frame, envelope(protocol), 1000)  # type: ignore[call-arg]
        assert parsed.malformed is not None
        assert len(parsed.malformed.raw) == 1000
        assert "exceeds the limit" in parsed.malformed.error
