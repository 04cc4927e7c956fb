"""Avro encoding in the Confluent wire format: magic byte 0, 4-byte schema id, Avro body.

The schema is registered once at start-up (:func:`k2.schemas.registry.register_value_schema`);
encoding then needs no registry round trip. The hot path is one call of an encoder compiled
from the schema: Python source with one straight-line step per field (no per-field dispatch,
no buffer object, lengths and small numbers from precomputed tables), executed once when the
encoder is built. Its output is byte for byte what fastavro's ``schemaless_writer`` writes for
the same record (tested on every recorded frame and on generated records); records encoded here
decode with confluent-kafka's ``AvroDeserializer`` and with Spark's framing of DESIGN.md §6.

Supported: records of ``string``, ``long``, ``int``, ``boolean`` (also with a ``logicalType``,
given as the plain number) and unions of ``null`` with one of those; a schema with anything
else is refused when the encoder is built.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from k2.schemas import schema_json

_MAGIC = b"\x00"
_TABLE_BITS = 14
_TABLE_SIZE = 1 << _TABLE_BITS
_PRIMITIVES = {"string", "long", "int", "boolean"}

Encoder = Callable[[Mapping[str, Any]], bytes]


def _varint_of(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# VARINT[x]: the varint of x (already zigzagged) for small x; CHUNK[x]: 14 bits as two bytes
# that both carry the continuation bit, for the low part of large values.
VARINT = tuple(_varint_of(value) for value in range(_TABLE_SIZE))
CHUNK = tuple(bytes(((x & 0x7F) | 0x80, ((x >> 7) & 0x7F) | 0x80)) for x in range(_TABLE_SIZE))


_HIGH: dict[int, bytes] = {}  # varint bytes of the part above the low 14 bits, recently seen
_HIGH_LIMIT = 4096
_HIGH_BITS = 64 - _TABLE_BITS


def _high(part: int) -> bytes:
    if part < _TABLE_SIZE:
        return VARINT[part]
    return CHUNK[part & (_TABLE_SIZE - 1)] + _high(part >> _TABLE_BITS)


def zigzag_long(value: int) -> bytes:
    """Avro ``long`` (and ``int``): zigzag, then a little-endian base-128 varint.

    Large values on the hot path are ids and microsecond times that rise slowly, so the bytes
    of everything above their low 14 bits are remembered (a small bounded cache). A value
    outside the signed 64-bit range raises OverflowError, as fastavro does, instead of being
    written as a number no reader could decode.
    """
    z = (value << 1) ^ (value >> 63)
    if z < _TABLE_SIZE:
        return VARINT[z]
    part = z >> _TABLE_BITS
    high = _HIGH.get(part)
    if high is None:
        if part >> _HIGH_BITS:  # z >= 2**64: only a value outside the long range maps there
            raise OverflowError(f"{value} is outside the range of an Avro long")
        if len(_HIGH) >= _HIGH_LIMIT:
            _HIGH.clear()
        high = _HIGH[part] = _high(part)
    return CHUNK[z & (_TABLE_SIZE - 1)] + high


def _plain(type_: Any) -> str:
    """The primitive a field type stands for (``{"type": "long", "logicalType": ...}`` → long)."""
    if isinstance(type_, dict):
        type_ = type_.get("type")
    if not isinstance(type_, str) or type_ not in _PRIMITIVES:
        raise ValueError(f"the specialised encoder does not support the Avro type {type_!r}")
    return type_


def _value_steps(type_: str, var: str, indent: str, cached: bool = False) -> list[str]:
    if type_ == "string" and cached:
        return [f"{indent}out += STRINGS.get({var}) or string_bytes({var})"]
    if type_ == "string":
        return [
            f"{indent}{var} = {var}.encode()",
            f"{indent}n = len({var}) << 1",
            f"{indent}out += VARINT[n] if n < {_TABLE_SIZE} else zigzag_long(n >> 1)",
            f"{indent}out += {var}",
        ]
    if type_ == "boolean":
        return [f"{indent}out += TRUE if {var} else FALSE"]
    return [f"{indent}out += zigzag_long({var})"]  # long, int


def _field_steps(field: Mapping[str, Any], index: int, cached: bool) -> list[str]:
    name = field["name"]
    var = f"v{index}"
    if "default" in field:
        read = f"{var} = record.get({name!r}, {field['default']!r})"
    else:
        read = f"{var} = record[{name!r}]"
    type_ = field["type"]
    if not isinstance(type_, list):
        return [f"    {read}", *_value_steps(_plain(type_), var, "    ", cached)]
    branches = [_plain(t) if t != "null" else "null" for t in type_]
    if len(branches) != 2 or "null" not in branches:
        raise ValueError(f"the specialised encoder supports unions of null and one type: {name}")
    null_at = branches.index("null")
    other = branches[1 - null_at]
    return [
        f"    {read}",
        f"    if {var} is None:",
        f"        out += {VARINT[null_at << 1]!r}",
        "    else:",
        f"        out += {VARINT[(1 - null_at) << 1]!r}",
        *_value_steps(other, var, "        ", cached),
    ]


def compile_encoder(
    schema: Mapping[str, Any], header: bytes = b"", repeated: frozenset[str] = frozenset()
) -> Encoder:
    """An encoder for records of ``schema``: ``header`` followed by the Avro binary body.

    String fields named in ``repeated`` take few distinct values (symbols, sides, versions):
    their encoded bytes are remembered instead of encoded again (a bounded cache).
    """
    if schema.get("type") != "record":
        raise ValueError("the specialised encoder encodes records")
    lines = ["def encode(record):", f"    out = {header!r}"]
    for index, field in enumerate(schema["fields"]):
        lines.extend(_field_steps(field, index, field["name"] in repeated))
    lines.append("    return out")
    strings: dict[str, bytes] = {}

    def string_bytes(value: str) -> bytes:
        if len(strings) >= _HIGH_LIMIT:
            strings.clear()
        encoded = value.encode()
        found = strings[value] = _string(encoded)
        return found

    namespace: dict[str, Any] = {
        "VARINT": VARINT,
        "zigzag_long": zigzag_long,
        "TRUE": b"\x01",
        "FALSE": b"\x00",
        "STRINGS": strings,
        "string_bytes": string_bytes,
    }
    exec(compile("\n".join(lines), f"<avro encoder {schema.get('name')}>", "exec"), namespace)  # noqa: S102
    encoder: Encoder = namespace["encode"]
    return encoder


def _string(encoded: bytes) -> bytes:
    return zigzag_long(len(encoded)) + encoded


# String fields of K2's schemas that take few distinct values per process.
REPEATED_FIELDS = frozenset(
    {"exchange", "exchange_symbol", "side", "ord_type", "order_type", "misc", "event_type",
     "time_unit", "stream", "connection_id", "protocol", "k2_version", "detected_by"}
)  # fmt: skip


class ConfluentEncoder:
    """Encodes records of one registered schema, framed for the Confluent wire format."""

    def __init__(self, schema_name: str, schema_id: int) -> None:
        self.schema_id = schema_id
        self.header = _MAGIC + struct.pack(">I", schema_id)
        self.encode = compile_encoder(schema_json(schema_name), self.header, REPEATED_FIELDS)
