"""A raw Kafka record (or Bronze row) normalises to the same trade as the raw trade it came from."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2.config import IngestSettings
from k2.errors import TradeInvalidError
from k2.exchanges.base import Envelope, FieldValue, Protocol_, RawTrade
from k2.exchanges.binance import normalise as binance
from k2.exchanges.factory import adapter_for
from k2.exchanges.kraken import normalise as kraken
from k2.exchanges.kraken.normalise import V1OccurrenceCounter
from k2.exchanges.kraken.parse import parse_v1_frame

from .recordings import received_frames
from .strategies import (
    binance_agg_trade_fields,
    binance_trade_fields,
    kraken_v1_fields,
    kraken_v1_pairs,
    kraken_v2_fields,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _envelope(protocol: Protocol_, received_us: int = 1_700_000_000_123_456) -> Envelope:
    return Envelope(received_us, "conn-1", 7, protocol)


def _record(exchange: str, raw: RawTrade, **section: Any) -> dict[str, Any]:
    venue = adapter_for(exchange, IngestSettings(**{exchange: section}))
    return venue.to_record(raw, venue.message_id(raw), "0.1.0")


@SETTINGS
@given(pair=kraken_v1_pairs, fields=kraken_v1_fields(), occurrence=st.integers(0, 3))
def test_kraken_v1_record_normalises_like_its_trade(
    pair: str, fields: dict[str, FieldValue], occurrence: int
) -> None:
    """Kraken v1: same unified trade, message_id included (tuple hash and occurrence)."""
    raw = RawTrade("kraken", pair, None, fields, _envelope("kraken-v1"), occurrence=occurrence)
    record = _record("kraken", raw, protocol="kraken-v1")
    assert kraken.trade_from_record(record) == kraken.normalise_trade(raw)


@SETTINGS
@given(fields=kraken_v2_fields(), snapshot=st.booleans())
def test_kraken_v2_record_normalises_like_its_trade(
    fields: dict[str, FieldValue], snapshot: bool
) -> None:
    """Kraken v2: same unified trade."""
    trade_id = fields["trade_id"]
    assert isinstance(trade_id, int)
    raw = RawTrade(
        "kraken", str(fields["symbol"]), trade_id, fields, _envelope("kraken-v2"), snapshot=snapshot
    )
    assert kraken.trade_from_record(_record("kraken", raw)) == kraken.normalise_trade(raw)


def test_kraken_recorded_session_records_normalise_like_their_trades() -> None:
    """Every trade of the recorded Kraken v1 session survives the record round trip."""
    counter = V1OccurrenceCounter()
    trades = [
        counter.assign(trade)
        for frame in received_frames("KRAKEN.ws.48.0")
        for trade in parse_v1_frame(frame, _envelope("kraken-v1")).trades
    ]
    assert len(trades) == 10
    for raw in trades:
        record = _record("kraken", raw, protocol="kraken-v1")
        assert kraken.trade_from_record(record) == kraken.normalise_trade(raw)


@SETTINGS
@given(fields=st.one_of(binance_trade_fields(), binance_agg_trade_fields()))
def test_binance_record_normalises_like_its_trade(fields: dict[str, FieldValue]) -> None:
    """Binance @trade and @aggTrade: same unified trade in the record's time unit."""
    time = fields["T"]
    assert isinstance(time, int)
    unit = "MICROSECOND" if time >= 10**15 else "MILLISECOND"
    aggregate = fields["e"] == "aggTrade"
    key = fields["a"] if aggregate else fields["t"]
    assert isinstance(key, int)
    protocol: Protocol_ = "binance-aggtrade" if aggregate else "binance-trade"
    raw = RawTrade("binance", str(fields["s"]), key, fields, _envelope(protocol))
    stream = "aggTrade" if aggregate else "trade"
    record = _record("binance", raw, stream=stream, time_unit=unit)
    expected = binance.normalise_trade(raw, time_unit=unit)  # type: ignore[arg-type]
    assert binance.trade_from_record(record) == expected


def test_an_out_of_range_time_is_an_invalid_trade_not_a_crash() -> None:
    """A µs time read as ms overflows the calendar: an invalid trade (reason time), no crash."""
    fields: dict[str, FieldValue] = {
        "e": "trade", "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": 10**16, "m": True,
    }  # fmt: skip
    raw = RawTrade("binance", "BTCUSDT", 1, fields, _envelope("binance-trade"))
    with pytest.raises(TradeInvalidError) as caught:
        binance.normalise_trade(raw, time_unit="MILLISECOND")
    assert caught.value.reason == "time"
