"""Avro encoding in the Confluent wire format: magic byte 0, 4-byte schema id, Avro body.

The schema is registered once at start-up (:func:`k2.schemas.registry.register_value_schema`);
encoding then needs no registry round trip. The hot path is one call of an encoder compiled
from the schema: Python source with one straight-line step per field (no per-field dispatch,
no buffer object, lengths and small numbers from precomputed tables), executed once when the
encoder is built. Its output is byte for byte what fastavro's ``schemaless_writer`` writes for
the same record (tested on every recorded frame and on generated records); records encoded here
decode with confluent-kafka's ``AvroDeserializer`` and with Spark's framing of DESIGN.md §6.

Supported: records of ``string``, ``long``, ``int``, ``boolean`` (also with a ``logicalType``,
given as the plain number), unions of ``null`` with one of those, and arrays of records of
those (a book's levels, each given as a tuple of its fields' values in order); a schema with
anything else is refused when the encoder is built.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from k2.exchanges.base import Malformed
from k2.schemas import schema_json

_MAGIC = b"\x00"
_TABLE_BITS = 14
_TABLE_SIZE = 1 << _TABLE_BITS
_PRIMITIVES = {"string", "long", "int", "boolean"}


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
_LENGTHS = _TABLE_SIZE // 2
LENGTH = VARINT[::2]  # LENGTH[n]: the Avro long n (a string's length), n < _LENGTHS
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
    return CHUNK[z & (_TABLE_SIZE - 1)] + (_HIGH.get(z >> _TABLE_BITS) or high_part(z))


def high_part(z: int) -> bytes:
    """The varint bytes of ``z`` above its low 14 bits, remembered (``z`` zigzagged)."""
    part = z >> _TABLE_BITS
    if part >> _HIGH_BITS:  # z >= 2**64: only a value outside the long range maps there
        raise OverflowError(f"{(z >> 1) ^ -(z & 1)} is outside the range of an Avro long")
    if len(_HIGH) >= _HIGH_LIMIT:
        _HIGH.clear()
    high = _HIGH[part] = _high(part)
    return high


def _plain(type_: Any) -> str:
    """The primitive a field type stands for (``{"type": "long", "logicalType": ...}`` → long)."""
    if isinstance(type_, dict):
        type_ = type_.get("type")
    if not isinstance(type_, str) or type_ not in _PRIMITIVES:
        raise ValueError(f"the specialised encoder does not support the Avro type {type_!r}")
    return type_


class _Steps:
    """The statements of an encoder being generated, and the state its caches need."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.slots = 0  # cells of STATE: (last value, its bytes) per remembered long
        self.arrays: list[Callable[[Sequence[Sequence[Any]]], bytes]] = []  # ARRAYS
        self.named: dict[str, Mapping[str, Any]] = {}  # records defined so far, by name

    def array(self, type_: Mapping[str, Any], var: str) -> list[str]:
        """The join part of an array of records: each item a tuple of the record's values."""
        items = type_.get("items")
        if isinstance(items, str):
            items = self.named.get(items)
        if not isinstance(items, Mapping) or items.get("type") != "record":
            raise ValueError(f"the specialised encoder supports arrays of records: {var}")
        self.named[str(items["name"])] = items
        order = [field["name"] for field in items["fields"]]
        self.arrays.append(_array_encoder(compile_encoder(items, order=order)))
        return [f"ARRAYS[{len(self.arrays) - 1}]({var})"]

    def value(self, type_: str, var: str, cached: bool, indent: str) -> list[str]:
        """Statements computing ``var``'s encoding; the expressions that are its bytes, in order,
        for the final join."""
        if type_ == "string" and cached:
            return [f"(STRINGS.get({var}) or string_bytes({var}))"]
        if type_ == "string":
            self.lines.append(f"{indent}e_{var} = {var}.encode()")
            self.lines.append(f"{indent}n_{var} = len(e_{var})")
            length = f"(LENGTH[n_{var}] if n_{var} < {_LENGTHS} else zigzag_long(n_{var}))"
            return [length, f"e_{var}"]
        if type_ == "boolean":
            return [f"(TRUE if {var} else FALSE)"]
        if cached:  # a long that repeats from one record to the next (a frame's receive time)
            last, encoded = self.slots, self.slots + 1
            self.slots += 2
            self.lines.append(f"{indent}if {var} == STATE[{last}]:")
            self.lines.append(f"{indent}    b_{var} = STATE[{encoded}]")
            self.lines.append(f"{indent}else:")
            (fresh,) = self.value(type_, var, False, indent + "    ")
            self.lines.append(f"{indent}    b_{var} = STATE[{encoded}] = {fresh}")
            self.lines.append(f"{indent}    STATE[{last}] = {var}")
            return [f"b_{var}"]
        # long, int: zigzag_long written out, as a call per value costs as much as the rest
        z, mask = f"z_{var}", _TABLE_SIZE - 1
        self.lines.append(f"{indent}{z} = ({var} << 1) ^ ({var} >> 63)")
        large = f"CHUNK[{z} & {mask}] + (HIGH.get({z} >> {_TABLE_BITS}) or high_part({z}))"
        return [f"(VARINT[{z}] if {z} < {_TABLE_SIZE} else {large})"]

    def field(self, field: Mapping[str, Any], var: str, cached: bool) -> list[str]:
        """The join parts of one field whose value is in ``var``."""
        type_ = field["type"]
        if isinstance(type_, dict) and type_.get("type") == "array":
            return self.array(type_, var)
        if not isinstance(type_, list):
            return self.value(_plain(type_), var, cached, "    ")
        branches = [_plain(t) if t != "null" else "null" for t in type_]
        if len(branches) != 2 or "null" not in branches:
            raise ValueError(f"the specialised encoder supports unions of null and one type: {var}")
        null_at = branches.index("null")
        self.lines.append(f"    if {var} is None:")
        self.lines.append(f"        u_{var} = {VARINT[null_at << 1]!r}")
        self.lines.append("    else:")
        parts = self.value(branches[1 - null_at], var, cached, "        ")
        self.lines.append(
            f"        u_{var} = {' + '.join([repr(VARINT[(1 - null_at) << 1]), *parts])}"
        )
        return [f"u_{var}"]


def _array_encoder(
    encode_item: Callable[[Sequence[Any]], bytes],
) -> Callable[[Sequence[Sequence[Any]]], bytes]:
    """An Avro array of items: one block of all of them (its count first), then the end."""

    def encode(items: Sequence[Sequence[Any]]) -> bytes:
        if not items:
            return b"\x00"
        return zigzag_long(len(items)) + b"".join(map(encode_item, items)) + b"\x00"

    return encode


def _source(
    schema: Mapping[str, Any], header: bytes, repeated: frozenset[str], order: Sequence[str] | None
) -> tuple[str, _Steps]:
    """Python source of ``encode(record)`` (a mapping), or of ``encode(values)`` (a sequence in
    ``order``) when an order is given; and the steps, with the STATE and ARRAYS it uses."""
    fields = list(schema["fields"])
    names = [field["name"] for field in fields]
    steps = _Steps()
    if order is None:
        signature = "record"
        for index, field in enumerate(fields):
            name = field["name"]
            read = f"record.get({name!r}, {field['default']!r})" if "default" in field else None
            steps.lines.append(f"    v{index} = {read or f'record[{name!r}]'}")
    else:
        unknown = [name for name in order if name not in names]
        if unknown:
            raise ValueError(f"the record order names fields the schema lacks: {unknown}")
        signature = "values"
        steps.lines.append(f"    ({', '.join(f'v{names.index(n)}' for n in order)},) = values")
    parts = [repr(header)] if header else []
    for index, field in enumerate(fields):
        if order is not None and field["name"] not in order:
            parts.append(repr(_default_bytes(field)))  # the same bytes for every record
        else:
            parts.extend(steps.field(field, f"v{index}", field["name"] in repeated))
    body = [f"def encode({signature}):", *steps.lines]
    body.append(f"    return b''.join(({', '.join(parts)},))")
    return "\n".join(body), steps


def _default_bytes(field: Mapping[str, Any]) -> bytes:
    """The encoding of a field's default (for fields a record order leaves out)."""
    if "default" not in field:
        raise ValueError(f"the record order lacks {field['name']}, which has no default")
    alone = {"type": "record", "name": "Default", "fields": [field]}
    return compile_encoder(alone)({})


def compile_encoder(
    schema: Mapping[str, Any],
    header: bytes = b"",
    repeated: frozenset[str] = frozenset(),
    order: Sequence[str] | None = None,
) -> Callable[[Any], bytes]:
    """An encoder for records of ``schema``: ``header`` followed by the Avro binary body.

    The encoder takes a mapping of field names, or, with ``order``, a sequence of the values of
    those fields in that order (fields it leaves out take their default): no dict is built per
    record. Each field's bytes are computed in straight-line code and joined once. Fields named
    in ``repeated`` take few distinct values: for strings (symbols, sides, versions) their
    encoded bytes are remembered (a bounded cache), for longs (a frame's receive time and
    position, shared by its trades) the last value's bytes are.
    """
    if schema.get("type") != "record":
        raise ValueError("the specialised encoder encodes records")
    strings: dict[str, bytes] = {}

    def string_bytes(value: str) -> bytes:
        if len(strings) >= _HIGH_LIMIT:
            strings.clear()
        encoded = value.encode()
        found = strings[value] = _string(encoded)
        return found

    namespace: dict[str, Any] = {
        "VARINT": VARINT,
        "LENGTH": LENGTH,
        "zigzag_long": zigzag_long,
        "CHUNK": CHUNK,
        "HIGH": _HIGH,
        "high_part": high_part,
        "TRUE": b"\x01",
        "FALSE": b"\x00",
        "STRINGS": strings,
        "string_bytes": string_bytes,
    }
    source, steps = _source(schema, header, repeated, order)
    namespace["STATE"] = [None] * steps.slots
    namespace["ARRAYS"] = steps.arrays
    exec(compile(source, f"<avro encoder {schema.get('name')}>", "exec"), namespace)  # noqa: S102 - the encoder generated above
    encoder: Callable[[Any], bytes] = namespace["encode"]
    return encoder


def _string(encoded: bytes) -> bytes:
    return zigzag_long(len(encoded)) + encoded


# Fields of K2's schemas that take few distinct values, or the same one many times running.
REPEATED_FIELDS = frozenset(
    {"exchange", "exchange_symbol", "side", "ord_type", "order_type", "misc", "event_type",
     "time_unit", "stream", "connection_id", "protocol", "k2_version", "detected_by",
     "received_us", "position", "source", "channel"}
)  # fmt: skip


class ConfluentEncoder:
    """Encodes records of one registered schema, framed for the Confluent wire format.

    :meth:`encode` takes a record as a mapping; with ``order``, :meth:`encode_values` takes the
    values of those fields in that order (the ingest's hot path, no dict per record).
    """

    def __init__(
        self, schema_name: str, schema_id: int, order: Sequence[str] | None = None
    ) -> None:
        self.schema_id = schema_id
        self.header = _MAGIC + struct.pack(">I", schema_id)
        schema = schema_json(schema_name)
        self.encode: Callable[[Mapping[str, Any]], bytes] = compile_encoder(
            schema, self.header, REPEATED_FIELDS
        )
        self.encode_values: Callable[[Sequence[Any]], bytes] = (
            compile_encoder(schema, self.header, REPEATED_FIELDS, order)
            if order is not None
            else self._no_order
        )

    @staticmethod
    def _no_order(values: Sequence[Any]) -> bytes:
        raise TypeError("this encoder was built without a field order; use encode(record)")


def dead_letter_record(exchange: str, bad: Malformed, k2_version: str) -> dict[str, Any]:
    """The ``dlq`` record of a frame that could not be read: its text, why, and its envelope."""
    return {
        "exchange": exchange,
        "raw": bad.raw,
        "error": bad.error,
        "received_us": bad.envelope.received_us,
        "connection_id": bad.envelope.connection_id,
        "position": bad.envelope.position,
        "protocol": bad.envelope.protocol,
        "k2_version": k2_version,
    }
