"""The services K2 uses but does not run: a Kafka cluster, a registry, a catalog, an object store,
a Spark master and its workers, each looked at directly and named when it is broken.

``k2 status`` lists them beside K2's own parts and ``k2 doctor`` stops at the first broken one.
Each probe has a short deadline and says what it found in one line.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from k2.config import LakeSettings, SparkSettings
from k2.lake.storage import is_object_store, pyiceberg_io

_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ExternalPart:
    """One external service as K2 sees it: up or not, and what was seen."""

    name: str
    address: str
    up: bool
    detail: str


def kafka_brokers(kafka: Mapping[str, str], topic_prefix: str) -> tuple[list[ExternalPart], int]:
    """Each bootstrap broker of the client settings ``kafka`` (``Settings.kafka_config()``), up
    or not, and the partitions of K2's topics (named with ``topic_prefix``) whose in-sync
    replicas are fewer than their replicas (under-replicated)."""
    bootstrap = kafka["bootstrap.servers"]
    configured = [a.strip() for a in bootstrap.split(",") if a.strip()]
    admin = AdminClient({**kafka, "log_level": "0"})
    try:
        meta = admin.list_topics(timeout=_TIMEOUT_S)
    except KafkaException:
        return [ExternalPart("kafka", a, False, "does not answer") for a in configured], 0
    alive = {f"{b.host}:{b.port}": b.id for b in meta.brokers.values()}
    under = sum(
        1
        for name, topic in meta.topics.items()
        if name.startswith(topic_prefix) and not name.startswith("__")
        for partition in topic.partitions.values()
        if len(partition.isrs) < len(partition.replicas)
    )
    parts = []
    for address in configured:
        node = alive.get(address)
        if node is None:
            parts.append(ExternalPart("kafka", address, False, "not in the cluster's metadata"))
        else:
            parts.append(ExternalPart(f"kafka-{node}", address, True, f"broker {node}"))
    return parts, under


def object_store(lake: LakeSettings) -> ExternalPart | None:
    """The warehouse's bucket: writable and readable with K2's credentials (a probe object is
    written and deleted); None when the warehouse is a local folder or the REST catalog's own."""
    warehouse = lake.warehouse
    if not is_object_store(warehouse):
        return None
    assert warehouse is not None
    from pyiceberg.io import load_file_io

    endpoint = lake.s3_endpoint or "AWS S3"
    probe = f"{warehouse.rstrip('/')}/.k2-probe-{uuid.uuid4().hex}"
    try:
        io = load_file_io(pyiceberg_io(lake).merged, probe)
        with io.new_output(probe).create(overwrite=True) as out:
            out.write(b"k2")
        with io.new_input(probe).open() as read_back:
            ok = read_back.read() == b"k2"
        io.delete(probe)
    except Exception as exc:  # noqa: BLE001 - any failure of the store, its network or its credentials
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return ExternalPart("object store", endpoint, False, f"{warehouse}: {first}")
    return ExternalPart("object store", endpoint, ok, f"{warehouse} writable")


def spark_master_ui(spark: SparkSettings) -> str | None:
    """The web UI of a standalone Spark master (its JSON lists workers and applications)."""
    if spark.master_ui_url:
        return spark.master_ui_url.rstrip("/")
    if not spark.master.startswith("spark://"):
        return None
    host = urlsplit(spark.master.split(",")[0]).hostname or "127.0.0.1"
    return f"http://{host}:8080"


def spark_cluster(spark: SparkSettings) -> tuple[list[ExternalPart], list[dict[str, Any]]]:
    """The standalone master and each worker it knows, and its running applications; empty when
    Spark runs in the job's own process (``local[*]``)."""
    ui = spark_master_ui(spark)
    if ui is None:
        return [], []
    try:
        with urllib.request.urlopen(f"{ui}/json/", timeout=_TIMEOUT_S) as resp:  # noqa: S310 - the master UI's http URL
            state = json.load(resp)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        return [ExternalPart("spark-master", spark.master, False, str(exc)[:200])], []
    parts = [
        ExternalPart(
            "spark-master",
            spark.master,
            state.get("status") == "ALIVE",
            f"{state.get('aliveworkers', 0)} worker(s) alive",
        )
    ]
    # A restarted worker registers anew and its old entry stays DEAD for a while: a worker is
    # its address, alive when any entry of it is.
    workers: dict[str, dict[str, Any]] = {}
    for worker in state.get("workers", []):
        address = f"{worker.get('host')}:{worker.get('port')}"
        if address not in workers or worker.get("state") == "ALIVE":
            workers[address] = worker
    for address, worker in sorted(workers.items()):
        alive = worker.get("state") == "ALIVE"
        used = f"{worker.get('coresused', 0)}/{worker.get('cores', 0)} cores in use"
        parts.append(ExternalPart("spark-worker", address, alive, used if alive else "dead"))
    return parts, list(state.get("activeapps", []))
