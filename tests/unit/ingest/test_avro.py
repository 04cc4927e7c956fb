"""The schema-compiled Avro encoder writes exactly fastavro's bytes: on every recorded frame, on
generated trades of every protocol, and on generated records of every schema."""

from __future__ import annotations

import io
import struct
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2.config import IngestSettings
from k2.domain import datetime_from_micros
from k2.exchanges.base import Envelope, FieldValue, Protocol_, RawTrade
from k2.exchanges.binance.parse import parse_frame as parse_binance
from k2.exchanges.factory import adapter_for
from k2.exchanges.kraken import wire as kraken_wire
from k2.exchanges.kraken.adapter import _rest_trade
from k2.exchanges.kraken.normalise import V1OccurrenceCounter
from k2.exchanges.kraken.parse import parse_frame as parse_kraken
from k2.ingest.avro import ConfluentEncoder, compile_encoder, zigzag_long
from k2.schemas import schema_json
from tests.unit.exchanges.binance.strategies import binance_agg_trade_fields, binance_trade_fields
from tests.unit.exchanges.kraken.strategies import (
    kraken_v1_fields,
    kraken_v1_pairs,
    kraken_v2_fields,
)
from tests.unit.exchanges.recordings import received_frames

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEMAS = ("kraken_raw", "binance_raw", "dlq", "gap", "book_raw")
SCHEMA_ID = 70_000  # more than one byte in every position of the header
US = 1_718_000_000_123_456
LONG = st.integers(min_value=-(2**63), max_value=2**63 - 1)
INT = st.integers(min_value=-(2**31), max_value=2**31 - 1)
ENCODERS = {name: ConfluentEncoder(name, SCHEMA_ID) for name in SCHEMAS}
PARSED = {name: parse_schema(schema_json(name)) for name in SCHEMAS}
ORDERED: dict[str, ConfluentEncoder] = {}  # raw schema → encoder of the adapter's value order


def fastavro_bytes(schema_name: str, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    schemaless_writer(buffer, PARSED[schema_name], _items_as_records(record))
    return b"\x00" + struct.pack(">I", SCHEMA_ID) + buffer.getvalue()


def _items_as_records(record: dict[str, Any]) -> dict[str, Any]:
    """The record as fastavro takes it: array items (tuples for K2's encoder, in the item
    record's field order) as mappings."""
    items = {"bids": ("price", "size"), "asks": ("price", "size")}
    return {
        name: [dict(zip(items[name], item, strict=True)) for item in value]
        if name in items and isinstance(value, list)
        else value
        for name, value in record.items()
    }


def assert_same_bytes(schema_name: str, record: dict[str, Any]) -> None:
    assert ENCODERS[schema_name].encode(record) == fastavro_bytes(schema_name, record)


def raw_record(exchange: str, raw: RawTrade, **section: Any) -> dict[str, Any]:
    """The trade's raw record, after checking that its values in the adapter's order encode to
    the same bytes as the record (the ingest's hot path encodes the values)."""
    adapter = adapter_for(exchange, IngestSettings(**{exchange: section}))
    values = adapter.record_values(raw, adapter.message_id(raw), "1.2.3")
    record = adapter.to_record(raw, adapter.message_id(raw), "1.2.3")
    ordered = ORDERED.get(adapter.schema_name) or ORDERED.setdefault(
        adapter.schema_name, ConfluentEncoder(adapter.schema_name, SCHEMA_ID, adapter.record_fields)
    )
    assert ordered.encode_values(values) == fastavro_bytes(adapter.schema_name, record)
    return record


def dead_letter(frame: str, envelope: Envelope, error: str) -> dict[str, Any]:
    return {
        "exchange": "kraken" if envelope.protocol.startswith("kraken") else "binance",
        "raw": frame,
        "error": error,
        "received_us": envelope.received_us,
        "connection_id": envelope.connection_id,
        "position": envelope.position,
        "protocol": envelope.protocol,
        "k2_version": "1.2.3",
    }


def test_every_recorded_kraken_frame_encodes_as_fastavro_does() -> None:
    """Recorded Kraken v1 session: each trade's raw record and each frame as a dead letter."""
    counter = V1OccurrenceCounter()
    trades = 0
    for position, frame in enumerate(received_frames("KRAKEN.ws.48.0")):
        envelope = Envelope(
            1_618_678_132_831_468 + position, "18239578009413566319", position, "kraken-v1"
        )
        for trade in parse_kraken(frame, envelope).trades:
            assert_same_bytes(
                "kraken_raw", raw_record("kraken", counter.assign(trade), protocol="kraken-v1")
            )
            trades += 1
        assert_same_bytes("dlq", dead_letter(frame, envelope, "not a trade"))
    assert trades == 10


@pytest.mark.parametrize("recording", ["BINANCE.ws.1.0", "BINANCE_US.ws.1.0"])
def test_every_recorded_binance_frame_encodes_as_fastavro_does(recording: str) -> None:
    """Recorded Binance sessions: each aggTrade's raw record and each frame as a dead letter."""
    trades = 0
    for position, frame in enumerate(received_frames(recording)):
        envelope = Envelope(
            1_633_998_512_063_356 + position, "c0ffee", position, "binance-aggtrade"
        )
        parsed = parse_binance(frame, envelope)
        for trade in parsed.trades:
            assert_same_bytes("binance_raw", raw_record("binance", trade, stream="aggTrade"))
            trades += 1
        error = parsed.malformed.error if parsed.malformed else "ünknown kind ✓"
        assert_same_bytes("dlq", dead_letter(frame, envelope, error))
    assert trades > 0


def envelopes(protocol: Protocol_) -> st.SearchStrategy[Envelope]:
    return st.builds(Envelope, LONG, st.text(max_size=20), LONG, st.just(protocol))


@SETTINGS
@given(
    pair=kraken_v1_pairs,
    fields=kraken_v1_fields(),
    occurrence=INT,
    envelope=envelopes("kraken-v1"),
    snapshot=st.booleans(),
)
def test_kraken_v1_trades_encode_as_fastavro_does(
    pair: str, fields: dict[str, FieldValue], occurrence: int, envelope: Envelope, snapshot: bool
) -> None:
    """Kraken v1: no id (null), exact strings, any occurrence, any envelope."""
    raw = RawTrade("kraken", pair, None, fields, envelope, occurrence, snapshot)
    assert_same_bytes("kraken_raw", raw_record("kraken", raw, protocol="kraken-v1"))


@SETTINGS
@given(fields=kraken_v2_fields(), envelope=envelopes("kraken-v2"), snapshot=st.booleans())
def test_kraken_v2_trades_encode_as_fastavro_does(
    fields: dict[str, FieldValue], envelope: Envelope, snapshot: bool
) -> None:
    """Kraken v2: ids across the whole long range, v1's fields null."""
    trade_id = fields["trade_id"]
    assert isinstance(trade_id, int)
    raw = RawTrade("kraken", str(fields["symbol"]), trade_id, fields, envelope, snapshot=snapshot)
    assert_same_bytes("kraken_raw", raw_record("kraken", raw))


@SETTINGS
@given(
    fields=kraken_v1_fields(),
    trade_id=st.integers(min_value=0, max_value=2**63 - 1),
    received_us=LONG,
    position=st.integers(min_value=0, max_value=2**40),
)
def test_kraken_rest_trades_encode_as_fastavro_does(
    fields: dict[str, FieldValue], trade_id: int, received_us: int, position: int
) -> None:
    """Kraken REST backfill rows: v1's names plus the v2 id."""
    row = [
        fields["price"],
        fields["volume"],
        fields["time"],
        fields["side"],
        fields["order_type"],
        fields["misc"],
        trade_id,
    ]
    raw = _rest_trade("BTC/USD", row, received_us, position)
    assert_same_bytes("kraken_raw", raw_record("kraken", raw))


@SETTINGS
@given(
    fields=st.one_of(binance_trade_fields(), binance_agg_trade_fields()),
    envelope=st.sampled_from(["binance-trade", "binance-aggtrade", "binance-rest"]).flatmap(
        envelopes  # type: ignore[arg-type]
    ),
    unit=st.sampled_from(["MILLISECOND", "MICROSECOND"]),
    ignore_m=st.none() | st.booleans(),
)
def test_binance_trades_encode_as_fastavro_does(
    fields: dict[str, FieldValue], envelope: Envelope, unit: str, ignore_m: bool | None
) -> None:
    """Binance @trade, @aggTrade and REST rows: each id family null or set, M null or set."""
    aggregate = fields["e"] == "aggTrade"
    fields = {**fields, "M": ignore_m}
    if envelope.protocol == "binance-rest":
        fields.pop("E")
    key = fields["a"] if aggregate else fields["t"]
    assert isinstance(key, int)
    raw = RawTrade("binance", str(fields["s"]), key, fields, envelope)
    stream = "aggTrade" if aggregate else "trade"
    assert_same_bytes("binance_raw", raw_record("binance", raw, stream=stream, time_unit=unit))


def _value(type_: Any) -> st.SearchStrategy[Any]:
    if isinstance(type_, list):
        return st.one_of(*(st.none() if t == "null" else _value(t) for t in type_))
    if isinstance(type_, dict) and type_["type"] == "array":
        return st.lists(st.tuples(st.text(), st.text()), max_size=30)
    if isinstance(type_, dict):
        return _value(type_["type"])
    return {"string": st.text(), "long": LONG, "int": INT, "boolean": st.booleans()}[type_]


@st.composite
def schema_records(draw: st.DrawFn, schema_name: str) -> dict[str, Any]:
    """Any record of the schema: every value in its type's range, defaulted fields sometimes
    left out (both writers must then write the default)."""
    record: dict[str, Any] = {}
    for field in schema_json(schema_name)["fields"]:
        if "default" in field and draw(st.booleans()):
            continue
        record[field["name"]] = draw(_value(field["type"]))
    return record


@SETTINGS
@given(data=st.data(), schema_name=st.sampled_from(SCHEMAS))
def test_any_record_of_every_schema_encodes_as_fastavro_does(
    data: st.DataObject, schema_name: str
) -> None:
    """Unicode strings, longs from -2**63 to 2**63-1, booleans, optional fields null or not,
    arrays of levels empty or not."""
    assert_same_bytes(schema_name, data.draw(schema_records(schema_name)))


def test_repeated_values_beyond_the_caches_encode_as_fastavro_does() -> None:
    """More distinct symbols and large numbers than the encoder remembers: still exact."""
    for index in range(10_000):
        symbol = f"S{index}/USD"
        fields = kraken_wire.v2_trade_fields(
            symbol, "buy", "1.5", "2", "limit", index * 2**40 + index, "2024-01-01T00:00:00.000001Z"
        )
        envelope = Envelope(2**62 + index * 2**30, f"c{index % 5000}", index, "kraken-v2")
        raw = RawTrade("kraken", symbol, index * 2**40 + index, fields, envelope)
        assert_same_bytes("kraken_raw", raw_record("kraken", raw))


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64, -(2**70)])
def test_a_long_out_of_range_is_refused_as_fastavro_refuses_it(value: int) -> None:
    """Outside the signed 64-bit range both writers raise instead of writing a wrong number."""
    record = {
        "exchange": "k",
        "raw": "",
        "error": "",
        "received_us": 0,
        "connection_id": "",
        "position": value,
        "protocol": "",
        "k2_version": "",
    }
    with pytest.raises((OverflowError, ValueError)):
        fastavro_bytes("dlq", record)
    with pytest.raises((OverflowError, ValueError)):
        ENCODERS["dlq"].encode(record)
    with pytest.raises((OverflowError, ValueError)):
        zigzag_long(value)


def test_values_in_an_order_leaving_out_defaulted_fields_encode_as_fastavro_does() -> None:
    """Fields an order leaves out are written as their defaults, as fastavro writes them."""
    record = {"exchange": "binance", "exchange_symbol": "BTCUSDT", "detected_by": "sequence",
              "backfilled": False, "detected_us": 1, "k2_version": "ü"}  # fmt: skip
    order = tuple(record)[::-1]
    encoder = ConfluentEncoder("gap", SCHEMA_ID, order)
    assert encoder.encode_values([record[name] for name in order]) == fastavro_bytes("gap", record)
    with pytest.raises(ValueError, match="no default"):
        ConfluentEncoder("gap", SCHEMA_ID, ("exchange",))
    with pytest.raises(ValueError, match="lacks"):
        ConfluentEncoder("gap", SCHEMA_ID, (*order, "nope"))


def test_a_schema_the_encoder_cannot_write_is_refused_when_compiled() -> None:
    """Types beyond strings, numbers and booleans are refused up front, never written wrong."""
    schema = {"type": "record", "name": "R", "fields": [{"name": "x", "type": "double"}]}
    with pytest.raises(ValueError, match="double"):
        compile_encoder(schema)


def test_confluent_encoder_frames_the_body() -> None:
    """An encoded record starts with the Confluent magic byte and its schema id, and its body reads
    back as the record (a field it leaves out as its default)."""
    encoder = ConfluentEncoder("gap", 258)
    record = {
        "exchange": "kraken",
        "exchange_symbol": "BTC/USD",
        "first_missing_id": 1,
        "last_missing_id": 2,
        "from_us": None,
        "to_us": None,
        "detected_by": "reconnect",
        "backfilled": True,
        "backfilled_count": 2,
        "reason": None,
        "detected_us": US,
        "k2_version": "t",
    }
    encoded = encoder.encode(record)
    assert encoded[:5] == b"\x00\x00\x00\x01\x02"
    schema = parse_schema(schema_json("gap"))
    decoded = schemaless_reader(io.BytesIO(encoded[5:]), schema, schema)  # type: ignore[call-arg]
    assert isinstance(decoded, dict)
    assert decoded.pop("detected_us") == datetime_from_micros(US)
    assert decoded == {k: v for k, v in record.items() if k != "detected_us"} | {"stream": "trades"}


def test_a_book_of_thousands_of_levels_encodes_as_fastavro_does() -> None:
    """A snapshot of 5,000 levels a side (counts that take several bytes) and an empty side."""
    record = {
        "exchange": "binance",
        "exchange_symbol": "BTCUSDT",
        "snapshot": True,
        "bids": [(f"{60_000 - index}.01", f"{index}.5") for index in range(5_000)],
        "asks": [],
        "verified": True,
        "outcome": "verified",
        "received_us": US,
        "connection_id": "rest",
        "position": 0,
        "protocol": "binance-rest-depth",
        "message_id": "binance:BTCUSDT:rest:0",
        "k2_version": "1.2.3",
    }
    assert_same_bytes("book_raw", record)
