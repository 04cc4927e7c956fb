"""Silver's Spark SQL normalisation equals the exchanges' Python normalisation, and every rule
holds.

The differential tests run raw records of every protocol (every recorded frame in
tests/fixtures, and hypothesis-generated trades) through both: the exchange's ``trade_from_record``
(what the ingest and the live stream use) and Silver's ``unified`` in the session's Spark. A
record Python normalises must come out of Spark as the same trade, with exactly the validation
reasons the rules give for that trade; a record Python refuses must be quarantined.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Context, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2.config import SilverSettings
from k2.domain import Trade, datetime_from_micros, micros_from_datetime
from k2.errors import TradeInvalidError
from k2.exchanges import exchange_entry
from k2.exchanges.base import Envelope, FieldValue, Protocol_, RawTrade
from k2.exchanges.binance.parse import parse_frame as parse_binance
from k2.exchanges.kraken.normalise import (
    V1OccurrenceCounter,
    parse_rfc3339_micros,
    parse_v1_time_micros,
)
from k2.exchanges.kraken.parse import parse_v1_frame
from k2.exchanges.okx import wire as okx_wire
from k2.exchanges.okx.parse import parse_frame as parse_okx
from k2.exchanges.okx.parse import trade_key as okx_trade_key
from k2.jobs.silver.normalise import REASONS, exact_decimals, unified
from k2.lake.tables import bronze_trades
from k2.schemas import raw_schema_name, schema_json
from tests.unit.exchanges.binance.strategies import binance_agg_trade_fields, binance_trade_fields
from tests.unit.exchanges.kraken.strategies import (
    kraken_v1_fields,
    kraken_v1_pairs,
    kraken_v2_fields,
)
from tests.unit.exchanges.okx.strategies import trade_fields as okx_trade_fields
from tests.unit.exchanges.recordings import received_frames

from .lanes import to_record

pytestmark = pytest.mark.integration

RULES = SilverSettings()
# Rules that judge a trade Python normalised; every other reason means Python refuses it too.
VALIDATION = {
    "price_out_of_range",
    "price_not_positive",
    "quantity_out_of_range",
    "quantity_not_positive",
    "quote_quantity_out_of_range",
    "exchange_ts_in_future",
    "exchange_ts_too_old",
}
_WIDE = Context(prec=200)
_LIMIT = Decimal(10) ** 20
_STEP = Decimal(1).scaleb(-18)
HYPOTHESIS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fits(value: Decimal) -> bool:
    """The value is exactly a decimal(38,18)."""
    return abs(value) < _LIMIT and _WIDE.quantize(value, _STEP) == value


def expected_reasons(trade: Trade) -> set[str]:
    """The validation rules, written out in Python for a trade Python normalised."""
    reasons = set()
    for name, value in (("price", trade.price), ("quantity", trade.quantity)):
        if not _fits(value):
            reasons.add(f"{name}_out_of_range")
        elif value <= 0:
            reasons.add(f"{name}_not_positive")
    if _fits(trade.price) and _fits(trade.quantity) and not _fits(trade.quote_quantity):
        reasons.add("quote_quantity_out_of_range")
    lead = micros_from_datetime(trade.exchange_ts) - micros_from_datetime(trade.received_ts)
    if lead > RULES.max_future_skew_s * 1_000_000:
        reasons.add("exchange_ts_in_future")
    if -lead > RULES.max_past_skew_s * 1_000_000:
        reasons.add("exchange_ts_too_old")
    return reasons


def _bronze_rows(exchange: str, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for offset, record in enumerate(records):
        row = dict(record)
        row["received_us"] = datetime_from_micros(record["received_us"])
        row.update(
            kafka_topic=f"raw.{exchange}",
            kafka_partition=0,
            kafka_offset=offset,
            kafka_timestamp=row["received_us"],
            schema_id=1,
        )
        rows.append(row)
    return rows


def silver_of(spark: Any, exchange: str, records: Sequence[dict[str, Any]]) -> list[Any]:
    """Silver's unified rows for ``records`` (Bronze-shaped), in record order, times in µs."""
    exact_decimals(spark)
    definition = bronze_trades(f"bronze.{exchange}_trades", schema_json(raw_schema_name(exchange)))
    ddl = ", ".join(
        f"`{c.name}` {c.sql_type}" for c in definition.columns if c.name != "bronze_written_at"
    )
    frame = spark.createDataFrame(_bronze_rows(exchange, records), ddl)
    out = unified(frame, exchange, RULES).selectExpr(
        "*", "unix_micros(exchange_ts) AS exchange_us", "unix_micros(received_ts) AS received_us"
    )
    return sorted(out.collect(), key=lambda row: row.kafka_offset)


def assert_same(spark: Any, exchange: str, records: Sequence[dict[str, Any]]) -> None:
    """Spark's Silver and Python's normalisation agree on every record."""
    normalise = exchange_entry(exchange).module("normalise").trade_from_record
    for record, row in zip(records, silver_of(spark, exchange, records), strict=True):
        reasons = set(row.reasons)
        assert reasons <= set(REASONS)
        try:
            trade: Trade = normalise(record)
        except TradeInvalidError:
            assert reasons - VALIDATION, (record, reasons)
            continue
        assert reasons == expected_reasons(trade), (record, reasons)
        if reasons & {"price_out_of_range", "quantity_out_of_range"}:
            continue  # Spark holds no value for a number that does not fit
        assert row.message_id == trade.message_id
        assert (row.exchange, row.symbol, row.base, row.quote) == (
            trade.exchange, trade.symbol, trade.base, trade.quote,
        )  # fmt: skip
        assert (row.exchange_symbol, row.trade_id) == (trade.exchange_symbol, trade.trade_id)
        assert (row.price, row.quantity) == (trade.price, trade.quantity)
        if "quote_quantity_out_of_range" not in reasons:
            assert row.quote_quantity == trade.quote_quantity
        assert (row.side, row.order_type) == (trade.side, trade.order_type)
        assert row.exchange_us == micros_from_datetime(trade.exchange_ts)
        assert row.received_us == micros_from_datetime(trade.received_ts)


def _envelope(protocol: Protocol_, received_us: int) -> Envelope:
    return Envelope(received_us, "conn", 0, protocol)


# ---------------------------------------------------------------------------------------------
# recorded sessions


def test_every_recorded_kraken_trade_is_the_same_in_spark(spark: Any) -> None:
    """The recorded Kraken v1 session: the same ten unified trades in Spark as in Python."""
    counter = V1OccurrenceCounter()
    envelope = _envelope("kraken-v1", 1_618_678_142_592_855)
    trades = [
        counter.assign(trade)
        for frame in received_frames("KRAKEN.ws.48.0")
        for trade in parse_v1_frame(frame, envelope).trades
    ]
    # Received a millisecond after each match, as a live feed would be.
    records = [
        to_record(raw, received_us=parse_v1_time_micros(str(raw.fields["time"])) + 1_000)
        for raw in trades
    ]
    assert len(records) == 10
    assert [row.reasons for row in silver_of(spark, "kraken", records)] == [[]] * 10
    assert_same(spark, "kraken", records)


def test_every_recorded_binance_trade_is_the_same_in_spark(spark: Any) -> None:
    """The recorded Binance sessions' aggregate trades: the same in Spark as in Python."""
    envelope = _envelope("binance-aggtrade", 1_633_998_523_957_215)
    frames = received_frames("BINANCE.ws.1.0") + received_frames("BINANCE_US.ws.1.0")
    trades = [t for frame in frames for t in parse_binance(frame, envelope).trades]
    records = [
        to_record(raw, time_unit="MILLISECOND", received_us=int(str(raw.fields["T"])) * 1000 + 1)
        for raw in trades
    ]
    assert len(records) == 13
    assert [row.reasons for row in silver_of(spark, "binance", records)] == [[]] * 13
    assert_same(spark, "binance", records)


# ---------------------------------------------------------------------------------------------
# generated trades of every protocol


_received = st.integers(min_value=-10_000_000, max_value=9 * 86_400_000_000)
# Raw records hold trade ids as Avro longs.
_kraken_v2_fields = kraken_v2_fields().filter(lambda fields: int(str(fields["trade_id"])) < 2**63)


def _kraken_v1(
    pair: str, fields: dict[str, FieldValue], lead: int, occurrence: int
) -> dict[str, Any]:
    at = parse_v1_time_micros(str(fields["time"])) + lead
    raw = RawTrade("kraken", pair, None, fields, _envelope("kraken-v1", at), occurrence=occurrence)
    return to_record(raw)


@HYPOTHESIS
@given(
    trades=st.lists(
        st.tuples(kraken_v1_pairs, kraken_v1_fields(), _received, st.integers(0, 2)),
        min_size=20,
        max_size=60,
    )
)
def test_generated_kraken_v1_trades_are_the_same_in_spark(spark: Any, trades: list[Any]) -> None:
    """Kraken v1: hypothesis-generated trades, the same in Spark as in Python."""
    assert_same(spark, "kraken", [_kraken_v1(*trade) for trade in trades])


def _kraken_v2(fields: dict[str, FieldValue], lead: int) -> dict[str, Any]:
    trade_id = fields["trade_id"]
    assert isinstance(trade_id, int)
    at = parse_rfc3339_micros(str(fields["timestamp"])) + lead
    raw = RawTrade("kraken", str(fields["symbol"]), trade_id, fields, _envelope("kraken-v2", at))
    return to_record(raw)


@HYPOTHESIS
@given(trades=st.lists(st.tuples(_kraken_v2_fields, _received), min_size=20, max_size=60))
def test_generated_kraken_v2_trades_are_the_same_in_spark(spark: Any, trades: list[Any]) -> None:
    """Kraken v2: hypothesis-generated trades, the same in Spark as in Python."""
    assert_same(spark, "kraken", [_kraken_v2(*trade) for trade in trades])


def _binance(fields: dict[str, FieldValue], lead: int) -> dict[str, Any]:
    aggregate = fields["e"] == "aggTrade"
    key = fields["a"] if aggregate else fields["t"]
    time = fields["T"]
    assert isinstance(key, int) and isinstance(time, int)
    micros = time >= 10**15
    at = (time if micros else time * 1000) + lead
    protocol: Protocol_ = "binance-aggtrade" if aggregate else "binance-trade"
    raw = RawTrade("binance", str(fields["s"]), key, fields, _envelope(protocol, at))
    return to_record(raw, time_unit="MICROSECOND" if micros else "MILLISECOND")


@HYPOTHESIS
@given(
    trades=st.lists(
        st.tuples(st.one_of(binance_trade_fields(), binance_agg_trade_fields()), _received),
        min_size=20,
        max_size=60,
    )
)
def test_generated_binance_trades_are_the_same_in_spark(spark: Any, trades: list[Any]) -> None:
    """Binance @trade and @aggTrade: hypothesis-generated trades, the same in Spark."""
    assert_same(spark, "binance", [_binance(*trade) for trade in trades])


# Values an exchange should never send, put in place of a field of a valid trade.
_ODD_TEXT = st.sampled_from(
    ["", "-1", "1e5", "1.", ".5", " 1", "1\n", "٣", "0", "0.000", "1" * 21, "0." + "1" * 19,
     "NaN", "+1", "1,5", "00012.50"]
)  # fmt: skip
_ODD_TIMES = st.sampled_from(
    ["2023-02-30T00:00:00Z", "2023-09-25T07:48:36z", "2023-09-25 07:48:36Z",
     "2023-09-25T07:48:36+24:00", "2023-09-25T07:48:36.Z", "0001-01-01T00:00:00+01:00",
     "2023-09-25T07:48:36.123456789+05:30", "2023-09-25T07:48:36Z\n", "1534614057.321597"]
)  # fmt: skip


@HYPOTHESIS
@given(
    trades=st.lists(
        st.tuples(
            _kraken_v2_fields,
            st.sampled_from(["price", "qty", "side", "timestamp", "symbol", "trade_id"]),
            st.one_of(_ODD_TEXT, _ODD_TIMES, st.none()),
        ),
        min_size=20,
        max_size=60,
    )
)
def test_odd_kraken_values_are_refused_alike(spark: Any, trades: list[Any]) -> None:
    """Kraken v2 records with one odd value: Spark refuses what Python refuses, keeps the rest."""
    records = []
    for fields, name, odd in trades:
        record = _kraken_v2(fields, 1_000)
        column = "exchange_symbol" if name == "symbol" else name
        if column == "trade_id":
            record[column] = None
        else:
            record[column] = odd
        records.append(record)
    assert_same(spark, "kraken", records)


@HYPOTHESIS
@given(
    trades=st.lists(
        st.tuples(
            binance_trade_fields(),
            st.sampled_from(["price", "quantity", "exchange_symbol", "trade_time"]),
            st.one_of(_ODD_TEXT, st.none(), st.integers(-(2**62), 2**62)),
        ),
        min_size=20,
        max_size=60,
    )
)
def test_odd_binance_values_are_refused_alike(spark: Any, trades: list[Any]) -> None:
    """Binance records with one odd value: Spark refuses what Python refuses, keeps the rest."""
    records = []
    for fields, name, odd in trades:
        record = _binance(fields, 1_000)
        if name == "trade_time":
            record[name] = odd if isinstance(odd, int) else 0
        elif name == "exchange_symbol":
            record[name] = odd if isinstance(odd, str) else "XYZ"
        else:
            record[name] = odd if isinstance(odd, str) else None
        records.append(record)
    assert_same(spark, "binance", records)


def test_every_recorded_okx_trade_is_the_same_in_spark(spark: Any) -> None:
    """The recorded OKX session: BTC-USDT's 69 trades the same in Spark as in Python; the
    future's and swap's trades have no spot symbol and are quarantined by both."""
    envelope = _envelope("okx-trades-all", 1_652_459_225_507_260)
    frames = received_frames("OKX.ws.1.0.trades")
    trades = [t for frame in frames for t in parse_okx(frame, envelope).trades]
    records = [to_record(raw, received_us=int(str(raw.fields["ts"])) * 1000 + 1) for raw in trades]
    assert len(records) == 74
    rows = silver_of(spark, "okx", records)
    assert [row.reasons for row in rows if row.exchange_symbol == "BTC-USDT"] == [[]] * 69
    assert {tuple(row.reasons) for row in rows if row.exchange_symbol != "BTC-USDT"} == {
        ("symbol_unknown",)
    }
    assert_same(spark, "okx", records)


def _okx(fields: dict[str, FieldValue], lead: int) -> dict[str, Any]:
    at = int(str(fields["ts"])) * 1000 + lead
    key = okx_trade_key(str(fields["tradeId"]))
    row = {**fields, "channel": "trades-all"}
    raw = RawTrade("okx", str(fields["instId"]), key, row, _envelope("okx-trades-all", at))
    return to_record(raw)


@HYPOTHESIS
@given(trades=st.lists(st.tuples(okx_trade_fields(), _received), min_size=20, max_size=60))
def test_generated_okx_trades_are_the_same_in_spark(spark: Any, trades: list[Any]) -> None:
    """OKX trades-all: hypothesis-generated trades, the same in Spark as in Python."""
    assert_same(spark, "okx", [_okx(*trade) for trade in trades])


@HYPOTHESIS
@given(
    trades=st.lists(
        st.tuples(
            okx_trade_fields(),
            st.sampled_from(["price", "quantity", "side", "ts", "exchange_symbol", "trade_id",
                             "count"]),
            st.one_of(_ODD_TEXT, st.sampled_from(["BTC-USDT-SWAP", "-USDT", "1", "007"])),
        ),
        min_size=20,
        max_size=60,
    )
)  # fmt: skip
def test_odd_okx_values_are_refused_alike(spark: Any, trades: list[Any]) -> None:
    """OKX records with one odd value: Spark refuses what Python refuses, keeps the rest."""
    records = []
    for fields, name, odd in trades:
        records.append({**_okx(fields, 1_000), name: odd})
    assert_same(spark, "okx", records)


def test_silver_side_is_the_takers_for_okx(spark: Any) -> None:
    """OKX documents ``side`` as the taker's ("Trade side of taker"): Silver keeps it as sent,
    so a taker's buy is ``buy`` and a taker's sell is ``sell``, as in Python."""
    records = []
    for n, side in enumerate(("buy", "sell", "sell", "buy")):
        fields = okx_wire.trade_fields("BTC-USDT", 100 + n, "65000.5", "0.25", side, _T // 1000)
        records.append(_okx(fields, 1_000))
    rows = silver_of(spark, "okx", records)
    assert [row.side for row in rows] == ["buy", "sell", "sell", "buy"]
    assert all(row.reasons == [] for row in rows)
    assert_same(spark, "okx", records)


# ---------------------------------------------------------------------------------------------
# every rule, one by one

_T = 1_700_000_000_000_000  # µs
_KRAKEN = RawTrade(
    "kraken",
    "BTC/USD",
    7,
    {
        "symbol": "BTC/USD", "side": "buy", "price": "65000.5", "qty": "0.25",
        "ord_type": "limit", "trade_id": 7, "timestamp": "2023-11-14T22:13:20.000000Z",
    },
    Envelope(_T + 1_000, "conn", 0, "kraken-v2"),
)  # fmt: skip
_CASES: dict[str, dict[str, Any]] = {
    "field_missing": {"protocol": "kraken-v1", "time": "1700000000.0", "volume": "1", "side": "b",
                      "order_type": None, "misc": ""},
    "symbol_unknown": {"exchange_symbol": "BTCUSD"},
    "price_not_decimal": {"price": "65,000"},
    "price_out_of_range": {"price": "0.0000000000000000001"},
    "price_not_positive": {"price": "0"},
    "quantity_not_decimal": {"qty": "1e-3"},
    "quantity_out_of_range": {"qty": "123456789012345678901"},
    "quantity_not_positive": {"qty": "0.000"},
    "quote_quantity_out_of_range": {"price": "0.000000001", "qty": "0.0000000001"},
    "side_unknown": {"side": "hold"},
    "trade_id_missing": {"trade_id": None},
    "exchange_ts_missing": {"timestamp": "2023-11-14"},
    "exchange_ts_in_future": {"timestamp": "2023-11-14T22:13:26.000000Z"},
    "exchange_ts_too_old": {"timestamp": "2023-11-07T22:13:19.000000Z"},
}  # fmt: skip


def test_each_rule_quarantines_a_trade_that_breaks_it_and_only_it(spark: Any) -> None:
    """One record per rule, breaking only that rule, gets exactly that reason; a clean one none."""
    assert set(_CASES) == set(REASONS)
    clean = to_record(_KRAKEN)
    records = [clean, *({**clean, **change} for change in _CASES.values())]
    rows = silver_of(spark, "kraken", records)
    assert rows[0].reasons == []
    assert rows[0].quote_quantity == Decimal("16250.125")
    for reason, row in zip(_CASES, rows[1:], strict=True):
        assert row.reasons == [reason], reason


def test_skew_limits_are_settings(spark: Any) -> None:
    """A tighter past skew quarantines what the default keeps."""
    exact_decimals(spark)
    late = {**to_record(_KRAKEN), "timestamp": "2023-11-14T21:13:20.000000Z"}  # an hour before
    definition = bronze_trades("bronze.k_trades", schema_json("kraken_raw"))
    ddl = ", ".join(
        f"`{c.name}` {c.sql_type}" for c in definition.columns if c.name != "bronze_written_at"
    )
    frame = spark.createDataFrame(_bronze_rows("kraken", [late]), ddl)
    (kept,) = unified(frame, "kraken", SilverSettings()).collect()
    (refused,) = unified(frame, "kraken", SilverSettings(max_past_skew_s=60)).collect()
    assert kept.reasons == [] and refused.reasons == ["exchange_ts_too_old"]
