"""Registering K2's schemas with a Confluent-compatible registry, refusing incompatible changes.

Each topic's value subject (``<topic>-value``) has compatibility BACKWARD: a new schema must read
every record written with the previous one, so old and new records coexist in a topic. A schema
the registry refuses stops the caller before anything is produced, with one line naming the
subject and the registry's reason.
"""

from __future__ import annotations

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from k2.errors import RegistryError

COMPATIBILITY = "BACKWARD"


def value_subject(topic: str) -> str:
    return f"{topic}-value"


def register_value_schema(client: SchemaRegistryClient, topic: str, schema_str: str) -> int:
    """Register ``schema_str`` for ``topic``'s values under BACKWARD compatibility; its id.

    Raises :class:`RegistryError` naming the incompatibility if the registry refuses it.
    """
    subject = value_subject(topic)
    try:
        if subject not in client.get_subjects():
            _set_compatibility(client, subject)
        return int(client.register_schema(subject, Schema(schema_str, "AVRO")))
    except SchemaRegistryError as exc:
        reason = str(exc.error_message).splitlines()[0][:300]
        if exc.http_status_code == 409:
            raise RegistryError(
                f"schema for {subject} is not {COMPATIBILITY}-compatible with the registered "
                f"version: {reason}; add new fields as optional with a default instead of "
                f"changing or removing fields"
            ) from exc
        raise RegistryError(
            f"registry refused the schema for {subject}: {reason} "
            f"(HTTP {exc.http_status_code}); check the registry URL and the schema"
        ) from exc


def _set_compatibility(client: SchemaRegistryClient, subject: str) -> None:
    """Set BACKWARD on a new subject; a process that set it a moment earlier is no conflict
    (two ingests start together and both register the shared gap subject)."""
    try:
        client.set_compatibility(subject, COMPATIBILITY)
    except SchemaRegistryError as exc:
        if exc.http_status_code != 409:
            raise
        current = client.get_compatibility(subject)
        if current != COMPATIBILITY:
            raise RegistryError(
                f"{subject} has compatibility {current}, set a moment ago by another client; "
                f"K2 needs {COMPATIBILITY}: set it with the registry's config API"
            ) from exc
