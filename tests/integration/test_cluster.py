"""The local cluster as real servers: Kafka's quorum, PostgreSQL, S3, both Iceberg catalogs,
Spark standalone, what they bind, what they log, and `k2 stack up/down --cluster`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import psycopg2
import pyarrow as pa
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from pyarrow.fs import FileSelector
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import DecimalType, NestedField, StringType

from k2.stack.cluster import LocalCluster, cluster_processes
from k2.stack.java import find_java
from tests.polling import Pending, log_tail, wait_until

pytestmark = pytest.mark.integration

PRICE = Decimal("12345678901234567890.123456789012345678")
# What the AWS SDK says when the server refuses a request's signature.
_REFUSED = r"ACCESS_DENIED|SIGNATURE_DOES_NOT_MATCH|403"

SPARK_JOB = """
import sys
from pyspark.sql import SparkSession

spark = (
    SparkSession.builder.master(sys.argv[1])
    .appName("k2-cluster-test")
    .config("spark.driver.host", "127.0.0.1")
    .config("spark.driver.bindAddress", "127.0.0.1")
    .config("spark.ui.enabled", "false")
    .config("spark.executor.memory", "512m")
    .config("spark.cores.max", "2")
    .getOrCreate()
)
print("COUNT", spark.range(1000).count())
print("EXECUTORS", spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1)
spark.stop()
"""


def _kill(cluster: LocalCluster, name: str) -> None:
    """SIGKILL the server ``name`` and wait until it is gone."""
    info = cluster.service(name).process.info()
    assert info is not None, f"{name} is not running"
    os.kill(info.pid, signal.SIGKILL)
    psutil.Process(info.pid).wait(timeout=30)


def _partitions(admin: AdminClient, topic: str) -> dict[int, tuple[int, int]]:
    """Per partition of ``topic``: (replicas, in-sync replicas)."""
    meta = admin.list_topics(topic, timeout=10).topics[topic]
    return {pid: (len(p.replicas), len(p.isrs)) for pid, p in meta.partitions.items()}


def _produce(bootstrap: str, topic: str, values: list[str]) -> None:
    """Send ``values`` with acks=all and fail on any record not acknowledged."""
    failures: list[str] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "delivery.timeout.ms": 120000,
        }
    )

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    for value in values:
        producer.produce(topic, value=value.encode(), on_delivery=delivered)
    left = producer.flush(150)
    assert left == 0 and failures == [], f"{left} unacknowledged, failures: {failures[:3]}"


def _consume(bootstrap: str, topic: str, expected: int) -> list[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"cluster-test-{os.getpid()}-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[str] = []

    def read() -> bool | Pending:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            values.append(msg.value().decode())
        return len(values) >= expected or Pending(f"{len(values)} of {expected} records")

    try:
        wait_until(read, 120, f"{expected} records from {topic}", every_s=0)
    finally:
        consumer.close()
    return values


def test_three_brokers_keep_acks_all_writes_going_with_one_killed(cluster: LocalCluster) -> None:
    """A topic replicated 3 with min.insync.replicas=2 takes and serves acks=all writes while
    one broker is SIGKILLed, and the broker rejoins every partition's ISR when restarted."""
    bootstrap = cluster.environment()["K2_KAFKA__BOOTSTRAP_SERVERS"]
    assert len(bootstrap.split(",")) == 3
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"cluster-check-{os.getpid()}"
    new = NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})
    admin.create_topics([new])[topic].result(timeout=60)
    resource = ConfigResource("topic", topic)

    def described() -> dict[str, Any] | Pending:
        # A topic created a moment ago may not be known yet to the broker that is asked.
        try:
            return dict(admin.describe_configs([resource])[resource].result(timeout=30))
        except KafkaException as exc:
            error = exc.args[0]
            if not error.retriable() and error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
            return Pending(error.str())

    configs = wait_until(described, 60, f"the configuration of {topic}")
    assert configs["min.insync.replicas"].value == "2"
    in_sync = {p: (3, 3) for p in range(3)}
    wait_until(lambda: _partitions(admin, topic) == in_sync, 60, "3 replicas in sync")

    _produce(bootstrap, topic, [f"before-{i}" for i in range(100)])
    _kill(cluster, "kafka-2")
    _produce(bootstrap, topic, [f"during-{i}" for i in range(100)])
    assert cluster.service("kafka-2").start()
    wait_until(
        lambda: _partitions(admin, topic) == in_sync or Pending(_partitions(admin, topic)),
        180,
        "the restarted broker back in every ISR",
        context=lambda: log_tail(cluster.service("kafka-2").process.log_file),
    )
    _produce(bootstrap, topic, [f"after-{i}" for i in range(100)])

    values = _consume(bootstrap, topic, 300)
    expected = {f"{when}-{i}" for when in ("before", "during", "after") for i in range(100)}
    assert set(values) == expected


def test_postgres_takes_the_k2_role_over_tcp_and_refuses_a_wrong_password(
    cluster: LocalCluster,
) -> None:
    """The JDBC catalog's database answers the k2 role's password over TCP, and only it."""
    env = cluster.environment("jdbc")
    port = cluster.postgres.access.port
    assert env["K2_LAKE__CATALOG_URI"] == f"jdbc:postgresql://127.0.0.1:{port}/iceberg"
    for database in ("iceberg", "iceberg_rest"):
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=port,
            dbname=database,
            user=env["K2_LAKE__CATALOG_USER"],
            password=env["K2_LAKE__CATALOG_PASSWORD"],
        )
        with conn, conn.cursor() as cur:
            cur.execute("SELECT current_user, current_database()")
            assert cur.fetchone() == ("k2", database)
        conn.close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(
            host="127.0.0.1", port=port, dbname="iceberg", user="k2", password="not-the-password"
        )


def test_s3_serves_the_keys_and_refuses_a_wrong_one(cluster: LocalCluster) -> None:
    """Objects written with the generated keys read back, and a wrong secret key is refused."""
    access = cluster.object_store.access
    store = access.filesystem()
    path = f"k2-lake/tests/probe-{os.getpid()}.txt"
    with store.open_output_stream(path) as out:
        out.write(b"exactly these bytes")
    with store.open_input_stream(path) as src:
        assert src.read() == b"exactly these bytes"
    wrong = access.filesystem(secret_key="wrong-secret-key")
    with pytest.raises(OSError, match=_REFUSED):
        wrong.open_input_stream(path).read()
    with (
        pytest.raises(OSError, match=_REFUSED),
        wrong.open_output_stream(f"{path}.forged") as out,
    ):
        out.write(b"forged")


def _s3_properties(env: dict[str, str]) -> dict[str, str]:
    """pyiceberg's FileIO properties for the cluster's object store."""
    return {
        "s3.endpoint": env["K2_LAKE__S3_ENDPOINT"],
        "s3.access-key-id": env["K2_LAKE__S3_ACCESS_KEY_ID"],
        "s3.secret-access-key": env["K2_LAKE__S3_SECRET_ACCESS_KEY"],
        "s3.region": env["K2_LAKE__S3_REGION"],
        "s3.path-style-access": env["K2_LAKE__S3_PATH_STYLE_ACCESS"],
    }


def _round_trip(catalog: Any, namespace: str) -> tuple[str, list[dict[str, Any]]]:
    """Create ``namespace.trades`` with a decimal(38,18) column, append one row, read it back;
    the table's location and its rows."""
    catalog.create_namespace(namespace)
    schema = Schema(
        NestedField(1, "symbol", StringType(), required=False),
        NestedField(2, "price", DecimalType(38, 18), required=False),
    )
    table = catalog.create_table(f"{namespace}.trades", schema)
    prices = pa.array([PRICE], pa.decimal128(38, 18))
    table.append(pa.table({"symbol": ["BTC/USD"], "price": prices}))
    rows = catalog.load_table(f"{namespace}.trades").scan().to_arrow().to_pylist()
    return table.location(), rows


def test_rest_catalog_keeps_exact_decimals_in_s3(cluster: LocalCluster) -> None:
    """pyiceberg on the REST catalog creates a table in the server's S3 warehouse and reads a
    decimal(38,18) back exactly."""
    env = cluster.environment("rest")
    assert "K2_LAKE__WAREHOUSE" not in env
    catalog = RestCatalog("k2", uri=env["K2_LAKE__CATALOG_URI"], **_s3_properties(env))
    location, rows = _round_trip(catalog, f"rest_{os.getpid()}")
    assert location.startswith("s3://k2-lake/rest-warehouse/")
    assert rows == [{"symbol": "BTC/USD", "price": PRICE}]
    store = cluster.object_store.access.filesystem()
    files = store.get_file_info(FileSelector(location.removeprefix("s3://"), recursive=True))
    assert any(info.path.endswith(".parquet") for info in files)


def test_jdbc_catalog_on_postgres_keeps_exact_decimals_in_s3(cluster: LocalCluster) -> None:
    """pyiceberg on the JDBC catalog settings (PostgreSQL, S3 warehouse) round-trips a
    decimal(38,18) exactly."""
    env = cluster.environment("jdbc")
    host_db = env["K2_LAKE__CATALOG_URI"].removeprefix("jdbc:postgresql://")
    user, password = env["K2_LAKE__CATALOG_USER"], env["K2_LAKE__CATALOG_PASSWORD"]
    catalog = SqlCatalog(
        "k2",
        uri=f"postgresql+psycopg2://{user}:{password}@{host_db}",
        warehouse=env["K2_LAKE__WAREHOUSE"],
        **_s3_properties(env),
    )
    location, rows = _round_trip(catalog, f"jdbc_{os.getpid()}")
    assert location.startswith("s3://k2-lake/warehouse/")
    assert rows == [{"symbol": "BTC/USD", "price": PRICE}]


def _spark_environment() -> dict[str, str]:
    java, _ = find_java(17, None, "K2_STACK__JAVA_HOME")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("K2_", "SPARK_"))}
    return {**env, "JAVA_HOME": str(java.parent.parent), "PYSPARK_PYTHON": sys.executable}


def test_spark_runs_work_on_both_workers_and_tracks_a_lost_one(cluster: LocalCluster) -> None:
    """A PySpark session on the standalone master runs on its two workers; a SIGKILLed worker
    is reported dead, and a restarted one alive again."""
    master = cluster.spark_master
    assert cluster.environment()["K2_SPARK__MASTER"] == master.address

    def alive() -> int:
        return len(master.alive_workers())

    wait_until(lambda: alive() == 2 or Pending(master.state()), 60, "2 ALIVE workers")

    done = subprocess.run(
        [sys.executable, "-c", SPARK_JOB, master.address],
        env=_spark_environment(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "COUNT 1000" in done.stdout and "EXECUTORS 2" in done.stdout, done.stdout

    worker = cluster.service("spark-worker-1")
    _kill(cluster, "spark-worker-1")
    wait_until(lambda: alive() == 1 or Pending(master.state()), 120, "the killed worker DEAD")
    port = cluster.workers[0].port
    states = [w["state"] for w in (master.state() or {})["workers"] if w["port"] == port]
    assert "ALIVE" not in states and "DEAD" in states
    assert worker.start()
    assert alive() == 2


def _listening(pids: set[int]) -> dict[int, list[tuple[str, int]]]:
    """Per pid of ``pids``: the (address, port) of every TCP socket it listens on."""
    found: dict[int, list[tuple[str, int]]] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids and conn.laddr:
            found.setdefault(conn.pid, []).append((conn.laddr.ip, conn.laddr.port))
    return found


def test_every_server_listens_on_loopback_on_its_chosen_ports(cluster: LocalCluster) -> None:
    """The cluster listens on exactly the ports of its state file, all on 127.0.0.1 except the
    REST catalog server, which has no setting for its address."""
    pids = {}
    for service in cluster.services:
        info = service.process.info()
        assert info is not None, f"{service.name} is not running"
        pids[info.pid] = service.name
    listening = _listening(set(pids))
    ports = {port for sockets in listening.values() for _, port in sockets}
    assert ports == set(cluster.state.ports.values())
    for pid, sockets in listening.items():
        if pids[pid] == "rest-catalog":
            continue
        addresses = {address for address, _ in sockets}
        assert addresses <= {"127.0.0.1", "::ffff:127.0.0.1"}, (pids[pid], sockets)


def test_no_log_or_command_line_shows_a_secret(cluster: LocalCluster) -> None:
    """No log file of the cluster and no command line of its processes holds a password or
    the S3 secret key (another user's `ps` shows command lines)."""
    secrets = [
        cluster.state.credentials[key]
        for key in ("postgres-superuser", "postgres-k2", "s3-secret-key")
    ]
    for log in cluster.dir.rglob("*.log"):
        if log.is_file():
            text = log.read_bytes()
            assert not [s for s in secrets if s.encode() in text], f"a secret in {log}"
    for pid in cluster_processes(cluster.stack.state_dir):
        try:
            args = " ".join(psutil.Process(pid).cmdline())
        except psutil.Error:
            continue
        assert not [s for s in secrets if s in args], f"a secret on the command line of {pid}"


def _k2(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("K2_")}
    env |= {"K2_HOME": str(home), "K2_STACK__START_TIMEOUT_S": "180"}
    return subprocess.run(
        [sys.executable, "-m", "k2", "stack", *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_stack_cluster_cli_is_idempotent_and_down_leaves_nothing(cluster: LocalCluster) -> None:
    """`k2 stack down --cluster` leaves no process of the cluster, `up --cluster` starts it
    again on the same ports (a second `up` finds it running), and the env file it writes is
    private while the terminal shows no secret."""
    home = cluster.stack.state_dir
    ports_before = dict(cluster.state.ports)
    down = _k2(home, "down", "--cluster")
    assert down.returncode == 0, down.stderr
    assert "kafka-1: stopped" in down.stdout
    left = list(cluster_processes(home))
    assert left == [], f"processes of the cluster left: {left}"

    started = _k2(home, "up", "--cluster", "--catalog", "rest")
    assert started.returncode == 0, started.stderr
    names = [service.name for service in cluster.services]
    assert all(f"{name}: started" in started.stdout for name in names), started.stdout
    again = _k2(home, "up", "--cluster")
    assert again.returncode == 0, again.stderr
    assert all(f"{name}: already running" in again.stdout for name in names), again.stdout

    state = json.loads((cluster.dir / "cluster.json").read_text())
    assert state["ports"] == ports_before
    for private in (cluster.dir / "cluster.json", cluster.env_file):
        assert private.stat().st_mode & 0o777 == 0o600, private
    assert "export K2_LAKE__CATALOG_PASSWORD=... (in the env file)" in again.stdout
    assert "K2_LAKE__CATALOG_PASSWORD=" in cluster.env_file.read_text()
    secrets = [state["credentials"][key] for key in ("postgres-k2", "s3-secret-key")]
    shown = started.stdout + started.stderr + again.stdout + again.stderr
    assert not [s for s in secrets if s in shown], "a secret shown on the terminal"
