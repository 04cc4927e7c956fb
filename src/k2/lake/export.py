"""Arrow record batches out as JSON, CSV, Parquet or an Arrow IPC stream, exactly.

Query results arrive as Arrow batches (DuckDB and Spark both hand them out without a detour
through Python numbers). Parquet and Arrow keep the columns' own types, so decimal(38,18) stays
decimal and times stay µs timestamps. The text formats (JSON, CSV) render every decimal as its
exact digits with trailing zeros dropped (``65000.100000000000000000`` → ``65000.1``) and every
time as RFC 3339 in UTC with six fractional digits (``2024-05-01T12:00:00.123456Z``); nothing is
ever converted to a float.

Each writer is incremental: :meth:`BatchWriter.write` returns the bytes of one batch, so a
caller can stream a large result with one batch in memory.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

Format = Literal["json", "csv", "parquet", "arrow"]
FORMATS: tuple[Format, ...] = ("json", "csv", "parquet", "arrow")
MEDIA_TYPES: dict[Format, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
}
RFC3339_US = "%Y-%m-%dT%H:%M:%SZ"  # Arrow's %S carries the fraction of a µs timestamp


def decimal_text(value: Decimal) -> str:
    """The exact digits of ``value``, without exponent or trailing fractional zeros."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def time_text(value: datetime) -> str:
    """RFC 3339 in UTC with µs: ``2024-05-01T12:00:00.123456Z`` (a naive time is UTC)."""
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def json_value(value: Any) -> Any:
    """``json.dumps`` fallback for values inside lists and structs."""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return time_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _decimal_column(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Exact decimal text, vectorised; Arrow writes magnitudes below 1e-6 in scientific
    notation, so those few values are rendered from their exact Python value instead."""
    text = pc.cast(column, pa.string())
    if column.type.scale > 0:
        text = pc.utf8_rtrim(pc.utf8_rtrim(text, characters="0"), characters=".")
    scientific = pc.match_substring(text, "E")
    if not pc.any(scientific).as_py():
        return text
    if isinstance(column, pa.ChunkedArray):
        column, text, scientific = (a.combine_chunks() for a in (column, text, scientific))
    positions = pc.indices_nonzero(scientific).to_pylist()
    exact = pa.array([decimal_text(column[i].as_py()) for i in positions], pa.string())
    return pc.replace_with_mask(text, scientific, exact)


def _text_column(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    kind = column.type
    if pa.types.is_decimal(kind):
        return _decimal_column(column)
    if pa.types.is_timestamp(kind):
        utc = column if kind.tz is not None else pc.assume_timezone(column, "UTC")
        if kind.unit != "us":
            utc = pc.cast(utc, pa.timestamp("us", tz="UTC"))
        return pc.strftime(utc, format=RFC3339_US)
    if pa.types.is_date(kind):
        return pc.strftime(column, format="%Y-%m-%d")
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return pa.array(
            [None if v is None else base64.b64encode(v).decode() for v in column.to_pylist()],
            pa.string(),
        )
    return column


def text_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with decimals, times, dates and bytes as text (see the module doc)."""
    columns = [_text_column(column) for column in batch.columns]
    return pa.record_batch(columns, names=batch.schema.names)


class BatchWriter(Protocol):
    """Turns a stream of batches of one schema into the bytes of one document."""

    def begin(self, schema: pa.Schema) -> bytes: ...

    def write(self, batch: pa.RecordBatch) -> bytes: ...

    def end(self, trailer: dict[str, Any] | None = None) -> bytes: ...


class JsonWriter:
    """``{"data": [row, ...], ...trailer}``: one object per row, the trailer's keys after."""

    def __init__(self) -> None:
        self._rows = 0

    def begin(self, schema: pa.Schema) -> bytes:
        return b'{"data":['

    def write(self, batch: pa.RecordBatch) -> bytes:
        rows = text_batch(batch).to_pylist()
        if not rows:
            return b""
        body = json.dumps(rows, separators=(",", ":"), default=json_value)[1:-1]
        prefix = "," if self._rows else ""
        self._rows += len(rows)
        return (prefix + body).encode()

    def end(self, trailer: dict[str, Any] | None = None) -> bytes:
        extra = "".join(
            f",{json.dumps(key)}:{json.dumps(value, default=json_value)}"
            for key, value in (trailer or {}).items()
        )
        return f"]{extra}}}\n".encode()


class CsvWriter:
    """CSV with a header line; text columns as in JSON, nulls as empty fields."""

    def __init__(self) -> None:
        self._header = True

    def begin(self, schema: pa.Schema) -> bytes:
        return b""

    def write(self, batch: pa.RecordBatch) -> bytes:
        sink = io.BytesIO()
        options = pa_csv.WriteOptions(include_header=self._header, quoting_style="needed")
        text = text_batch(batch)
        nested = [
            i for i, field in enumerate(text.schema) if pa.types.is_nested(field.type)
        ]  # CSV has no lists or structs: those columns go as JSON text
        for i in nested:
            values = [json.dumps(v, default=json_value) for v in text.column(i).to_pylist()]
            text = text.set_column(i, text.schema.names[i], pa.array(values, pa.string()))
        pa_csv.write_csv(text, sink, options)
        self._header = False
        return sink.getvalue()

    def end(self, trailer: dict[str, Any] | None = None) -> bytes:
        return b""


class _Sink(io.RawIOBase):
    """A write-only file whose written bytes are collected and handed out by :meth:`take`."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        return len(chunk)

    def take(self) -> bytes:
        out, self._chunks = b"".join(self._chunks), []
        return out


class ParquetWriter:
    """Parquet with the columns' own types (zstd); one row group per batch."""

    def __init__(self) -> None:
        self._sink = _Sink()
        self._writer: pq.ParquetWriter | None = None

    def begin(self, schema: pa.Schema) -> bytes:
        self._writer = pq.ParquetWriter(self._sink, schema, compression="zstd")
        return self._sink.take()

    def write(self, batch: pa.RecordBatch) -> bytes:
        assert self._writer is not None, "begin() first"
        if batch.num_rows:
            self._writer.write_batch(batch)
        return self._sink.take()

    def end(self, trailer: dict[str, Any] | None = None) -> bytes:
        assert self._writer is not None, "begin() first"
        self._writer.close()
        return self._sink.take()


class ArrowWriter:
    """An Arrow IPC stream with the columns' own types."""

    def __init__(self) -> None:
        self._sink = _Sink()
        self._writer: Any = None

    def begin(self, schema: pa.Schema) -> bytes:
        self._writer = pa.ipc.new_stream(self._sink, schema)
        return self._sink.take()

    def write(self, batch: pa.RecordBatch) -> bytes:
        self._writer.write_batch(batch)
        return self._sink.take()

    def end(self, trailer: dict[str, Any] | None = None) -> bytes:
        self._writer.close()
        return self._sink.take()


def writer_for(fmt: Format) -> BatchWriter:
    """A fresh writer for ``fmt``."""
    writers: dict[Format, type[BatchWriter]] = {
        "json": JsonWriter,
        "csv": CsvWriter,
        "parquet": ParquetWriter,
        "arrow": ArrowWriter,
    }
    return writers[fmt]()


def encode(
    fmt: Format,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    trailer: Callable[[], dict[str, Any]] | None = None,
) -> Iterator[bytes]:
    """The document of ``batches`` in ``fmt``, chunk by chunk (empty chunks skipped).

    ``trailer`` is called once every batch was written; JSON appends what it returns (for
    example the next page's cursor, known only after the last row).
    """
    writer = writer_for(fmt)
    first = writer.begin(schema)
    if first:
        yield first
    for batch in batches:
        chunk = writer.write(batch)
        if chunk:
            yield chunk
    last = writer.end(trailer() if trailer is not None else None)
    if last:
        yield last
