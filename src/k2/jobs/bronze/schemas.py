"""Writer schemas by id and the current reader schema of a subject, for Bronze's decode plan.

The reader schema is the subject's latest registered version (before anything is registered, the
packaged ``.avsc``). Writer schemas are fetched by id the first time a micro-batch holds that id,
and kept: a schema id never changes its schema. A new id usually means a new version was
registered, so the reader schema is refreshed then, and every writer schema is checked against it
with Avro's own resolution rules; an id that does not resolve is refused (its records become
rejects), an id the registry does not know is unknown. A registry that cannot be reached is not
a verdict on any record: the error propagates and the micro-batch is retried from its offsets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import structlog
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from k2.errors import RegistryError
from k2.jobs.bronze.decode import DecodePlan

log = structlog.get_logger(__name__)

# (reader, writer) -> None when the writer's records resolve to the reader, else the reason.
ResolutionCheck = Callable[[str, str], str | None]


def avro_resolution_check(spark: Any) -> ResolutionCheck:
    """Avro's reader/writer compatibility check, run in the Spark driver's JVM.

    The JVM's Avro library is the one ``from_avro`` decodes with, so its verdict is the decoder's.
    """
    jvm = spark.sparkContext._jvm

    def check(reader: str, writer: str) -> str | None:
        parse = jvm.org.apache.avro.Schema.Parser
        result = jvm.org.apache.avro.SchemaCompatibility.checkReaderWriterCompatibility(
            parse().parse(reader), parse().parse(writer)
        )
        if str(result.getType().toString()) == "COMPATIBLE":
            return None
        incompatibilities = result.getResult().getIncompatibilities()
        first = incompatibilities.get(0) if incompatibilities.size() else None
        detail = str(first.getMessage()) if first is not None else "incompatible"
        return f"writer schema does not resolve to the reader schema: {detail}"

    return check


class SchemaResolver:
    """The decode plan of one subject, learning schema ids as micro-batches bring them."""

    def __init__(
        self,
        client: SchemaRegistryClient,
        subject: str,
        fallback_reader: str,
        check: ResolutionCheck,
    ) -> None:
        self._client = client
        self._subject = subject
        self._fallback = fallback_reader
        self._check = check
        self._lock = threading.Lock()
        self._writers: dict[int, str] = {}
        self._unknown: set[int] = set()
        self._foreign: dict[int, str] = {}
        self._reader = fallback_reader
        self._plan = DecodePlan(fallback_reader)

    @property
    def plan(self) -> DecodePlan:
        return self._plan

    def prime(self) -> DecodePlan:
        """Fetch the reader schema and every registered version of the subject.

        Raises :class:`RegistryError` when the registry cannot be reached or refuses.
        """
        with self._lock:
            try:
                for version in self._registered_versions():
                    registered = self._client.get_version(self._subject, version)
                    self._writers[int(registered.schema_id)] = registered.schema.schema_str
                self._reader = self._latest_reader()
            except (SchemaRegistryError, httpx.HTTPError) as exc:
                raise RegistryError(
                    f"cannot read subject {self._subject} from the schema registry: {exc}; "
                    f"is it up (`k2 stack status`) and K2_REGISTRY__URL right?"
                ) from exc
            self._plan = self._build()
            return self._plan

    def learn(self, schema_ids: Iterable[int]) -> bool:
        """Resolve ids the plan does not know yet; True when the plan changed."""
        with self._lock:
            new = sorted(set(schema_ids) - set(self._writers) - set(self._foreign) - self._unknown)
            if not new:
                return False
            for schema_id in new:
                writer = self._fetch(schema_id)
                if writer is None and schema_id not in self._foreign:
                    self._unknown.add(schema_id)
                    log.warning("schema_id_unknown", subject=self._subject, schema_id=schema_id)
                elif writer is not None:
                    self._writers[schema_id] = writer
            self._reader = self._latest_reader()
            plan = self._build()
            changed = plan != self._plan
            self._plan = plan
            return changed

    def _fetch(self, schema_id: int) -> str | None:
        try:
            schema = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return None
            raise
        kind = schema.schema_type or "AVRO"
        if kind != "AVRO":
            self._foreign[schema_id] = f"writer schema is {kind}, not Avro"
            return None
        return str(schema.schema_str)

    def _registered_versions(self) -> list[int]:
        try:
            return [int(v) for v in self._client.get_versions(self._subject)]
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return []
            raise

    def _latest_reader(self) -> str:
        self._client.clear_latest_caches()
        try:
            latest = self._client.get_latest_version(self._subject)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return self._fallback
            raise
        reader = str(latest.schema.schema_str)
        if reader != self._reader:
            log.info(
                "reader_schema_selected",
                subject=self._subject,
                schema_id=latest.schema_id,
                version=latest.version,
            )
        return reader

    def _build(self) -> DecodePlan:
        writers: dict[int, str] = {}
        refused: dict[int, str] = dict(self._foreign)
        for schema_id, writer in self._writers.items():
            reason = self._check(self._reader, writer)
            if reason is None:
                writers[schema_id] = writer
            else:
                refused[schema_id] = reason
        return DecodePlan(self._reader, writers, refused)
