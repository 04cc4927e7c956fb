"""Silver's Spark SQL normalisation of Coinbase equals the Python one, and Silver's side is the
taker's: on recorded trades (as the socket and as the history send them), on generated trades,
and on odd values both sides must refuse alike."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k2.exchanges.base import Envelope, FieldValue, Protocol_, RawTrade
from k2.exchanges.coinbase import wire
from k2.exchanges.coinbase.parse import parse_frame
from k2.exchanges.values import rfc3339_micros
from tests.unit.exchanges.coinbase.strategies import (
    as_market_trade,
    recorded_matches,
    trade_fields,
)

from .lanes import to_record
from .test_silver import _ODD_TEXT, _ODD_TIMES, HYPOTHESIS, _received, assert_same, silver_of

pytestmark = pytest.mark.integration


def socket_record(fields: dict[str, FieldValue], lead_us: int) -> dict[str, Any]:
    """The raw record of one market_trades trade, received ``lead_us`` after its match."""
    at = rfc3339_micros(str(fields["time"]), "t") + lead_us
    text = wire.render_market_trades([fields], "update", 3, "2021-04-17T16:43:37.000000001Z")
    (raw,) = parse_frame(text, Envelope(at, "conn", 0, "coinbase-advanced")).trades
    return to_record(raw)


def history_record(match: dict[str, Any], lead_us: int) -> dict[str, Any]:
    """The raw record the backfill writes for the history's row of a recorded trade (the
    ``match`` message carries the row's fields: integer id, the maker's side)."""
    at = rfc3339_micros(match["time"], "t") + lead_us
    fields: dict[str, FieldValue] = {
        "trade_id": str(match["trade_id"]),
        "product_id": match["product_id"],
        **{name: match[name] for name in ("price", "size", "side", "time")},
    }
    protocol: Protocol_ = "coinbase-rest"
    raw = RawTrade("coinbase", match["product_id"], match["trade_id"], fields,
                   Envelope(at, "rest", 0, protocol))  # fmt: skip
    return to_record(raw)


def test_recorded_trades_are_the_same_in_spark_and_silver_side_is_the_takers(spark: Any) -> None:
    """107 recorded trades, each as the socket and as the history send it: valid, equal in
    Spark and Python, and Silver's side is the taker's (the recording names the maker's)."""
    matches = recorded_matches()
    records = [socket_record(as_market_trade(m), 1_000) for m in matches]
    records += [history_record(m, 1_000) for m in matches]
    rows = silver_of(spark, "coinbase", records)
    assert [row.reasons for row in rows] == [[]] * len(records)
    assert_same(spark, "coinbase", records)
    takers = ["sell" if m["side"] == "buy" else "buy" for m in matches]
    assert [row.side for row in rows] == takers + takers
    assert [row.message_id for row in rows[: len(matches)]] == [
        row.message_id for row in rows[len(matches) :]
    ]


@HYPOTHESIS
@given(trades=st.lists(st.tuples(trade_fields(), _received), min_size=20, max_size=60))
def test_generated_trades_are_the_same_in_spark(spark: Any, trades: list[Any]) -> None:
    """market_trades: hypothesis-generated trades (ms to ns times, padded ids), the same in
    Spark as in Python."""
    assert_same(spark, "coinbase", [socket_record(fields, lead) for fields, lead in trades])


_ODD_IDS = st.sampled_from(["", "-1", "1.0", "٣", " 1", "9" * 19, "9" * 25, "0x10", "00000"])


@HYPOTHESIS
@given(
    trades=st.lists(
        st.tuples(
            trade_fields(),
            st.sampled_from(["price", "size", "side", "time", "exchange_symbol", "trade_id"]),
            st.one_of(_ODD_TEXT, _ODD_TIMES, _ODD_IDS, st.sampled_from(["buy", "Sell", "X"])),
            st.booleans(),
        ),
        min_size=20,
        max_size=60,
    )
)
def test_odd_values_are_refused_alike(spark: Any, trades: list[Any]) -> None:
    """Records with one odd value, as the socket or the history would hold them: Spark refuses
    what Python refuses, keeps the rest."""
    records = []
    for fields, column, odd, from_history in trades:
        record = socket_record(fields, 1_000)
        if from_history:
            record["protocol"] = "coinbase-rest"
        record[column] = odd
        records.append(record)
    assert_same(spark, "coinbase", records)
