"""Query results leave exactly: decimals as exact text, times RFC 3339 with µs, binary formats
with their own types."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from k2.lake.export import decimal_text, encode, text_batch, time_text

DECIMALS = st.decimals(
    min_value=Decimal("-1e19"), max_value=Decimal("1e19"), places=18, allow_nan=False
)


@given(st.lists(DECIMALS, min_size=1, max_size=20))
def test_arrow_decimal_text_equals_python_exact_text(values: list[Decimal]) -> None:
    """Arrow's rendering of decimal(38,18) equals the exact text of each value."""
    batch = pa.record_batch([pa.array(values, pa.decimal128(38, 18))], names=["p"])
    texts = text_batch(batch).column(0).to_pylist()
    assert texts == [decimal_text(v) for v in values]
    assert [Decimal(t) for t in texts] == values


def test_times_are_rfc3339_utc_with_microseconds() -> None:
    """Aware and naive times both render in UTC with six fractional digits."""
    moment = datetime(2024, 5, 1, 12, 0, 0, 5, UTC)
    aware = pa.array([moment], pa.timestamp("us", tz="UTC"))
    naive = pa.array([moment.replace(tzinfo=None)], pa.timestamp("us"))
    batch = pa.record_batch([aware, naive], names=["a", "n"])
    assert text_batch(batch).to_pylist() == [
        {"a": "2024-05-01T12:00:00.000005Z"} | {"n": "2024-05-01T12:00:00.000005Z"}
    ]
    assert time_text(moment) == "2024-05-01T12:00:00.000005Z"


def test_json_streams_rows_then_the_trailer() -> None:
    """The JSON document holds every row of every batch, then the trailer's keys."""
    schema = pa.schema([("p", pa.decimal128(38, 18)), ("n", pa.int64())])
    batches = [
        pa.record_batch(
            [pa.array([Decimal("1.5")], schema.field("p").type), pa.array([1])], schema=schema
        ),
        pa.record_batch(
            [pa.array([], schema.field("p").type), pa.array([], pa.int64())], schema=schema
        ),
        pa.record_batch(
            [pa.array([Decimal("0.000000000000000001")], schema.field("p").type), pa.array([2])],
            schema=schema,
        ),
    ]
    text = b"".join(encode("json", schema, batches, lambda: {"next_cursor": None}))
    assert json.loads(text) == {
        "data": [{"p": "1.5", "n": 1}, {"p": "0.000000000000000001", "n": 2}],
        "next_cursor": None,
    }


def test_parquet_and_arrow_keep_the_decimal_type() -> None:
    """Parquet and the Arrow stream read back with decimal(38,18) values unchanged."""
    values = [Decimal("65000.123456789012345678"), None]
    batch = pa.record_batch([pa.array(values, pa.decimal128(38, 18))], names=["p"])
    parquet = pq.read_table(io.BytesIO(b"".join(encode("parquet", batch.schema, [batch, batch]))))
    arrow = pa.ipc.open_stream(b"".join(encode("arrow", batch.schema, [batch]))).read_all()
    assert parquet.column("p").to_pylist() == values * 2
    assert (
        arrow.column("p").type == pa.decimal128(38, 18) and arrow.column("p").to_pylist() == values
    )
