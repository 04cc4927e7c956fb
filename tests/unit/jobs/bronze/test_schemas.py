"""Bronze's schema resolver: new writer schema versions learned with the reader that reads them,
unknown and unresolvable ids told apart, an unreachable registry never taken for an answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

from k2.jobs.bronze.schemas import SchemaResolver


class _Registered:
    def __init__(self, schema_id: int, version: int, text: str) -> None:
        self.schema_id = schema_id
        self.version = version
        self.schema = type("Schema", (), {"schema_str": text, "schema_type": "AVRO"})()


class _FakeRegistry:
    """The few calls SchemaResolver makes, over an in-memory subject."""

    def __init__(self, versions: list[str]) -> None:
        self.versions = list(versions)
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise SchemaRegistryError(503, 50301, "unavailable")

    def get_versions(self, subject: str) -> list[int]:
        self._check()
        return list(range(1, len(self.versions) + 1))

    def get_version(self, subject: str, version: int) -> _Registered:
        return _Registered(version, version, self.versions[version - 1])

    def get_latest_version(self, subject: str) -> _Registered:
        self._check()
        return self.get_version(subject, len(self.versions))

    def clear_latest_caches(self) -> None:
        pass

    def get_schema(self, schema_id: int) -> Any:
        self._check()
        if not 1 <= schema_id <= len(self.versions):
            raise SchemaRegistryError(404, 40403, "Schema not found")
        return self.get_version("", schema_id).schema


def _schema(*extra: str) -> str:
    fields: list[dict[str, Any]] = [{"name": "a", "type": "string"}]
    fields += [{"name": name, "type": ["null", "string"], "default": None} for name in extra]
    return json.dumps({"type": "record", "name": "R", "fields": fields})


def test_a_new_schema_version_is_learned_with_its_reader() -> None:
    """A schema version registered while the stream runs is learned once, and the newest version
    becomes the reader."""
    registry = _FakeRegistry([_schema()])
    resolver = SchemaResolver(registry, "t-value", _schema(), lambda reader, writer: None)
    assert set(resolver.prime().writers) == {1}
    registry.versions.append(_schema("b"))
    assert resolver.learn({1, 2}) is True
    assert set(resolver.plan.writers) == {1, 2} and resolver.plan.reader == _schema("b")
    assert resolver.learn({1, 2}) is False


def test_unknown_and_unresolvable_ids_are_told_apart() -> None:
    """A schema id the registry does not know and a version the reader cannot resolve are told
    apart, neither decoded with the wrong schema."""
    registry = _FakeRegistry([_schema(), _schema("b")])

    def check(reader: str, writer: str) -> str | None:
        return "no" if writer == _schema("b") else None

    resolver = SchemaResolver(registry, "t-value", _schema(), check)
    plan = resolver.prime()
    assert set(plan.writers) == {1} and plan.refused == {2: "no"}
    assert resolver.learn({77}) is False
    assert 77 not in resolver.plan.known()


def test_an_unreachable_registry_is_not_a_verdict() -> None:
    """A registry that does not answer is an error to retry, never taken to mean the schema id is
    unknown."""
    registry = _FakeRegistry([_schema()])
    resolver = SchemaResolver(registry, "t-value", _schema(), lambda reader, writer: None)
    resolver.prime()
    registry.down = True
    with pytest.raises(SchemaRegistryError):
        resolver.learn({5})
    registry.down = False
    assert resolver.learn({5}) is False  # 5 is genuinely unknown once the registry answers
