"""Avro encoding in the Confluent wire format: magic byte 0, 4-byte schema id, Avro body.

The schema is registered once at start-up (:func:`k2.schemas.registry.register_value_schema`);
encoding then needs no registry round trip, so the hot path is one ``schemaless_writer`` call.
Records encoded here decode with confluent-kafka's ``AvroDeserializer`` and with Spark's framing
of DESIGN.md §6.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from typing import Any

from fastavro import parse_schema, schemaless_writer

from k2.schemas import schema_json

_MAGIC = b"\x00"


class ConfluentEncoder:
    """Encodes records of one registered schema."""

    def __init__(self, schema_name: str, schema_id: int) -> None:
        self.schema_id = schema_id
        self._schema = parse_schema(schema_json(schema_name))
        self._header = _MAGIC + struct.pack(">I", schema_id)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        buffer = io.BytesIO()
        buffer.write(self._header)
        schemaless_writer(buffer, self._schema, record)
        return buffer.getvalue()
