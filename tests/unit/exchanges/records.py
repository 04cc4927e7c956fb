"""Raw records in tests: the record the ingest writes for a trade, and a record written and read
back with its exchange's raw Avro schema, as Kafka carries it."""

from __future__ import annotations

import io
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from k2.config import IngestSettings
from k2.exchanges.base import RawTrade
from k2.exchanges.factory import adapter_for
from k2.schemas import schema_json


def round_trip(schema_name: str, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as a consumer reads it: written, then read, with raw schema ``schema_name``."""
    schema = parse_schema(schema_json(schema_name))
    buffer = io.BytesIO()
    schemaless_writer(buffer, schema, record)
    buffer.seek(0)
    decoded: dict[str, Any] = schemaless_reader(buffer, schema, schema)  # type: ignore[call-arg,assignment]
    return decoded


def record_of(exchange: str, raw: RawTrade, **section: Any) -> dict[str, Any]:
    """The raw record the ingest writes for ``raw``, the exchange's settings changed by
    ``section``."""
    adapter = adapter_for(exchange, IngestSettings(**{exchange: section}))
    return adapter.to_record(raw, adapter.message_id(raw), "0.1.0")
