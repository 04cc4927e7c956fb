"""Silver's Spark SQL for Bybit equals Bybit's Python normalisation (the differential test of
``test_silver``) on the documented and captured frames, on generated trades and on odd values
both refuse alike; and Silver's side is the taker's."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k2.exchanges.base import Envelope, FieldValue, RawTrade
from k2.exchanges.bybit.parse import parse_frame
from tests.unit.exchanges.bybit.strategies import trade_fields
from tests.unit.exchanges.bybit.test_parse import DOC_TRADE, SPOT_CAPTURE

from .lanes import to_record
from .test_silver import _ODD_TEXT, HYPOTHESIS, _received, assert_same, silver_of

pytestmark = pytest.mark.integration


def _record(fields: dict[str, FieldValue], lead: int) -> dict[str, Any]:
    """The raw record of a trade received ``lead`` µs after its match time."""
    at = int(str(fields["T"])) * 1000 + lead
    raw = RawTrade("bybit", str(fields["s"]), None, fields, Envelope(at, "c", 0, "bybit-spot"))
    return to_record(raw)


def test_documented_and_captured_trades_are_the_same_in_spark(spark: Any) -> None:
    """The documentation's trade (linear, a UUID id) and a live spot capture, received a
    millisecond after their match: valid, and the same trades in Spark as in Python."""
    frames = (DOC_TRADE, SPOT_CAPTURE, SPOT_CAPTURE.replace('"S":"Buy"', '"S":"Sell"'))
    records = [
        _record(dict(trade.fields), 1_000)
        for frame in frames
        for trade in parse_frame(frame, Envelope(0, "c", 0, "bybit-spot")).trades
    ]
    assert [row.reasons for row in silver_of(spark, "bybit", records)] == [[]] * 3
    assert_same(spark, "bybit", records)


def test_silver_side_is_the_taker_s(spark: Any) -> None:
    """Bybit's S is the taker's side: a Buy is a buy in Silver, a Sell a sell."""
    buy, sell = (
        _record(dict(parse_frame(frame, Envelope(0, "c", 0, "bybit-spot")).trades[0].fields), 1)
        for frame in (SPOT_CAPTURE, SPOT_CAPTURE.replace('"S":"Buy"', '"S":"Sell"'))
    )
    rows = silver_of(spark, "bybit", [buy, sell])
    assert [(row.side, row.reasons) for row in rows] == [("buy", []), ("sell", [])]


@HYPOTHESIS
@given(trades=st.lists(st.tuples(trade_fields(), _received), min_size=20, max_size=60))
def test_generated_bybit_trades_are_the_same_in_spark(spark: Any, trades: list[Any]) -> None:
    """Bybit spot: hypothesis-generated trades, the same in Spark as in Python."""
    assert_same(spark, "bybit", [_record(*trade) for trade in trades])


@HYPOTHESIS
@given(
    trades=st.lists(
        st.tuples(
            trade_fields(),
            st.sampled_from(["price", "size", "side", "exchange_symbol", "trade_id", "trade_time"]),
            st.one_of(_ODD_TEXT, st.none(), st.integers(-(2**62), 2**62)),
        ),
        min_size=20,
        max_size=60,
    )
)
def test_odd_bybit_values_are_refused_alike(spark: Any, trades: list[Any]) -> None:
    """Bybit records with one odd value: Spark refuses what Python refuses, keeps the rest."""
    records = []
    for fields, name, odd in trades:
        record = _record(fields, 1_000)
        if name == "trade_time":
            record[name] = odd if isinstance(odd, int) else 0
        elif name in ("exchange_symbol", "side"):
            record[name] = odd if isinstance(odd, str) else "XYZ"
        else:
            record[name] = odd if isinstance(odd, str) else None
        records.append(record)
    assert_same(spark, "bybit", records)
