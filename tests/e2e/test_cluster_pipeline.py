"""K2 on a cluster of real servers, configured by environment only, compared with the ledger.

The local cluster (three KRaft brokers, the registry, PostgreSQL, an S3 object store, Iceberg's
REST catalog server, a Spark master with two workers) serves a whole pipeline: the simulator,
both ingests and the streaming job on the standalone master, with the JDBC catalog on
PostgreSQL and the warehouse and checkpoint on S3. Meanwhile a broker is SIGKILLed and
restarted, a Spark worker SIGKILLed and restarted, PostgreSQL restarted and the object store
restarted. Then every reader must agree with Spark, two writers from different machines must
refuse each other, doctor must name each external part that stops, and one more run goes
through the REST catalog.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from k2.config import Settings
from k2.jobs.offsets import marker_offsets
from k2.lake.catalog import lake_tables, open_catalog
from k2.stack.ports import free_port
from tests.e2e.ledger_run import LedgerRun, settings_from
from tests.integration.lanes import (
    RawProducer,
    count,
    kraken_v2,
    make_lane,
    running,
    to_record,
)
from tests.integration.lanes import wait_until as lane_wait
from tests.polling import log_tail, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(1800)]

T0 = 1_764_547_200_000_000  # 2025-12-01T00:00:00Z, µs
PER_SYMBOL = 900  # about 45 s of trading: a broker dies while trades flow
WAIT_S = 600.0


@dataclass
class ClusterRun:
    run: LedgerRun
    expected: dict[tuple[str, str], set[int]]
    codes: dict[str, int]
    command_lines: list[str]  # of every process while the job ran on the cluster


def _command_lines() -> list[str]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            found.append(" ".join(process.info["cmdline"] or ()))
    return found


def _environment(cluster: Any, catalog: str, name: str) -> dict[str, str]:
    """The cluster's settings, with topics, tables and checkpoint of this run's own."""
    env = cluster.environment(catalog)
    env["K2_LAKE__NAMESPACE_PREFIX"] = f"t_{name}_"
    env["K2_STREAM__CHECKPOINT_DIR"] = f"s3://k2-lake/checkpoints/{name}"
    return env


def _kill(service: Any) -> None:
    info = service.process.info()
    assert info is not None, f"{service.name} is not running"
    os.kill(info.pid, signal.SIGKILL)
    wait_until(lambda: service.process.info() is None, 30, f"{service.name} gone")


def _restart(cluster: Any, name: str) -> None:
    """Stop one server, then bring the cluster back up as `k2 stack up --cluster` does (which
    restarts what depends on it)."""
    assert cluster.service(name).stop()
    assert (name, True) in cluster.up()


@pytest.fixture(scope="module")
def jdbc_run(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterRun]:
    """One pipeline run on the cluster with the JDBC catalog, through every server fault."""
    home = tmp_path_factory.mktemp("cluster-jdbc")
    run = LedgerRun(_environment(cluster, "jdbc", "cjdbc"), home, "test.cjdbc.", PER_SYMBOL, WAIT_S)
    with run.running_parts():
        run.start_all()
        # A broker dies while the ingests deliver: acks=all goes on with two of three replicas.
        run.poll(lambda: len(run.entries()) >= 200, "the first trades sent")
        broker = cluster.service("kafka-2")
        _kill(broker)
        time.sleep(3)
        assert broker.start()
        run.poll(lambda: run.rows("bronze.binance_trades") > 0, "the first trades in Bronze")
        command_lines = _command_lines()  # the driver's JVM and the workers' executors among them
        run.inject_invalid()
        worker = cluster.service("spark-worker-1")
        _kill(worker)  # its executor is lost and its tasks retried on the other worker
        assert worker.start()
        for name in ("postgres", "s3"):  # the catalog's database, then the warehouse, restarted
            _restart(cluster, name)
        expected = run.wait_for_every_trade()
        codes = run.stop_all()
    yield ClusterRun(run, expected, codes, command_lines)


def test_every_ledger_trade_lands_once_on_the_cluster_through_server_faults(
    jdbc_run: ClusterRun,
) -> None:
    """With a broker and a Spark worker killed, the catalog's database and the object store
    restarted, Gold on S3 holds each ledger trade once with every value and bar exact."""
    assert all(code == 0 for code in jdbc_run.codes.values()), jdbc_run.codes
    stream_log = (jdbc_run.run.home / "stream.log").read_text()
    assert '"event": "writer_lease_acquired"' in stream_log
    jdbc_run.run.assert_ledger_in_gold(jdbc_run.expected)
    gold = jdbc_run.run.settings
    assert gold.warehouse.startswith("s3://k2-lake/") and gold.spark.master.startswith("spark://")


def test_no_credential_is_in_a_command_line_or_a_log(jdbc_run: ClusterRun, cluster: Any) -> None:
    """The catalog's password and the object store's keys reach the driver and the executors,
    yet no process listing and no log of K2 or of Spark's workers shows them."""
    env = jdbc_run.run.env
    secrets = [env["K2_LAKE__CATALOG_PASSWORD"], env["K2_LAKE__S3_SECRET_ACCESS_KEY"]]
    executors = [c for c in jdbc_run.command_lines if "CoarseGrainedExecutorBackend" in c]
    assert executors, "no executor ran on the workers"
    for line in jdbc_run.command_lines:
        assert not any(secret in line for secret in secrets), line[:300]
    logs = [*jdbc_run.run.home.rglob("*.log"), *(cluster.dir).rglob("spark-worker-*/**/std*")]
    assert logs
    for log in logs:
        text = log.read_text(errors="replace")
        assert not any(secret in text for secret in secrets), log


def _k2(run: LedgerRun, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(run.env)
    if home is not None:
        env["K2_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "k2", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_reader_of_the_s3_lake_agrees_with_spark(jdbc_run: ClusterRun) -> None:
    """k2 sql on DuckDB and on Spark, the API and k2 coverage read the same trades from S3."""
    run = jdbc_run.run
    total = sum(len(ids) for ids in jdbc_run.expected.values())
    query = f"SELECT count(*) AS n, sum(quantity) AS q FROM {run.qualified('gold.trades')}"
    answers = {}
    for engine in ("duckdb", "spark"):
        done = _k2(run, "sql", query, "--engine", engine, "--format", "json")
        assert done.returncode == 0, done.stderr[-2000:]
        answers[engine] = json.loads(done.stdout)
    assert answers["duckdb"] == answers["spark"]
    assert int(answers["duckdb"]["data"][0]["n"]) == total

    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "k2", "api", "--port", str(port)],
        env=run.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def served() -> Any:
            try:
                with urllib.request.urlopen(f"{base}/v1/symbols", timeout=5) as resp:
                    rows = json.load(resp)["data"]
            except OSError:
                return None
            return rows if len(rows) == len(jdbc_run.expected) else None

        symbols = wait_until(served, 120, "the API over the S3 lake")
    finally:
        api.terminate()
        api.wait(30)
    counted = {(s["exchange"], s["symbol"]): s["trade_count"] for s in symbols}
    assert counted == {key: len(ids) for key, ids in jdbc_run.expected.items()}

    coverage = _k2(run, "coverage", "--exchange", "kraken", "--symbol", "BTC/USD", "--all-hours")
    assert coverage.returncode == 0, coverage.stderr[-2000:]
    hours = [line.split() for line in coverage.stdout.splitlines()[1:-1]]
    traded = [h for h in hours if h[5] != "empty"]
    assert sum(int(h[4]) for h in traded) == len(jdbc_run.expected[("kraken", "BTC/USD")])
    assert traded and all(h[5] == "complete" for h in traded), coverage.stdout


def test_status_lists_the_external_parts_and_maintenance_runs_on_s3(
    jdbc_run: ClusterRun, cluster: Any
) -> None:
    """`k2 status` shows each broker, the registry, the object store and the Spark master and
    workers up; `k2 lake maintain` compacts, expires and looks for orphans in the S3 warehouse
    without changing a row."""
    run = jdbc_run.run
    status = _k2(run, "status", "--json")
    assert status.returncode == 0, status.stderr[-2000:]
    external = [c for c in json.loads(status.stdout)["components"] if c["kind"] == "external"]
    names = sorted(c["name"] for c in external)
    parts = ["kafka-1", "kafka-2", "kafka-3", "registry", "object store", "spark-master"]
    assert names == sorted([*parts, "spark-worker", "spark-worker"]), external
    assert all(c["up"] for c in external), external
    before = run.table("gold.trades")
    done = _k2(run, "lake", "maintain")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "orphan_files_removed=0" in done.stderr, done.stderr[-3000:]
    after = run.table("gold.trades")
    assert sorted(r["message_id"] for r in after) == sorted(r["message_id"] for r in before)


def test_two_writers_on_different_machines_refuse_each_other(
    jdbc_run: ClusterRun, tmp_path: Path
) -> None:
    """A streaming job holds the catalog's writer lease; a rebuild or a second job started
    from another K2_HOME (another machine) on the same catalog is refused, naming it."""
    run = jdbc_run.run
    elsewhere = tmp_path / "other-machine"
    elsewhere.mkdir()
    first_log = tmp_path / "first.log"
    with first_log.open("wb") as out:
        first = subprocess.Popen(
            [sys.executable, "-m", "k2", "job", "stream"],
            env={**run.env, "K2_STREAM__CHECKPOINT_DIR": str(tmp_path / "checkpoint")},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: "writer_lease_acquired" in first_log.read_text(),
            240,
            "the first job's lease",
            context=lambda: log_tail(first_log),
        )
        rebuild = _k2(run, "job", "rebuild", "gold", home=elsewhere)
        assert rebuild.returncode != 0
        assert f"K2_HOME {run.home}" in rebuild.stderr, rebuild.stderr[-2000:]
        second = _k2(run, "job", "stream", home=elsewhere)
        assert second.returncode != 0
        assert "is writing these tables now" in second.stderr, second.stderr[-2000:]
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(240) == 0, log_tail(first_log)
    # Released on a clean stop: the other machine may write now.
    rebuild = _k2(run, "job", "rebuild", "bars", home=elsewhere)
    assert rebuild.returncode == 0, rebuild.stderr[-2000:]


@pytest.mark.parametrize(
    ("server", "stage"),
    [
        ("kafka-3", "broker"),
        ("registry", "registry"),
        ("postgres", "catalog"),
        ("s3", "storage"),
        ("spark-worker-2", "spark"),
    ],
)
def test_doctor_names_each_external_part_that_stops(
    jdbc_run: ClusterRun, cluster: Any, server: str, stage: str
) -> None:
    """Every external server stopped in turn is the stage doctor names, with its address."""
    run = jdbc_run.run
    healthy = json.loads(_k2(run, "doctor", "--json", "--trade-timeout", "2").stdout)
    assert healthy["broken_stage"] == "venue", healthy  # no simulator runs now: past every part
    service = cluster.service(server)
    assert service.stop()
    try:
        report = json.loads(_k2(run, "doctor", "--json", "--trade-timeout", "2").stdout)
    finally:
        assert (server, True) in cluster.up()
    assert report["broken_stage"] == stage, report
    broken = next(c for c in report["checks"] if c["stage"] == stage)
    port = service.address.split("/")[2 if "//" in service.address else 0].rsplit(":", 1)[-1]
    assert port in broken["cause"], broken


def test_a_local_lake_copied_to_the_cluster_holds_the_same_rows(
    spark: Any, settings: Settings, stack: Any, cluster: Any, tmp_path: Path
) -> None:
    """`k2 lake copy` moves a laptop's lake into the cluster's catalog and object store: every
    table with its definition and rows, each table's offsets settled nowhere in the new Kafka."""
    lane = make_lane(settings, tmp_path, "copysrc")
    trades = [
        kraken_v2("BTC/USD", 700 + i, f"6{i}.5", "0.25", T0 + i * 1_000_000) for i in range(40)
    ]
    RawProducer(lane).send([to_record(t) for t in trades], "kraken")
    with contextlib.contextmanager(running)(spark, lane) as (_, writer):
        lane_wait(lambda: count(spark, lane.table("gold.trades")) >= 40, "the local lake")
    writer.rollup()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("K2_")},
        **cluster.environment("jdbc"),
        "K2_HOME": str(tmp_path / "cluster-home"),
        "K2_LAKE__NAMESPACE_PREFIX": lane.settings.lake.namespace_prefix,
        "K2_KAFKA__TOPIC_PREFIX": lane.settings.kafka.topic_prefix,
    }
    done = subprocess.run(
        [sys.executable, "-m", "k2", "lake", "copy", "--from-home", str(settings.stack.home)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    source, target = (
        open_catalog(lane.settings.lake_access()),
        open_catalog(settings_from(env).lake_access()),
    )
    prefix = lane.settings.lake.namespace_prefix
    tables = lake_tables(source, prefix)
    assert lake_tables(target, prefix) == tables and f"{prefix}gold.trades" in tables
    for identifier in tables:
        mine, theirs = source.load_table(identifier), target.load_table(identifier)
        assert theirs.location().startswith("s3://k2-lake/"), identifier
        assert theirs.spec() == mine.spec() and theirs.schema() == mine.schema(), identifier
        assert _sorted_rows(theirs) == _sorted_rows(mine), identifier
    bronze = marker_offsets(target.load_table(f"{prefix}bronze.kraken_trades"))
    assert bronze is not None and bronze.settled == {}  # the new Kafka is read from its start


def _sorted_rows(table: Any) -> list[str]:
    return sorted(repr(sorted(row.items())) for row in table.scan().to_arrow().to_pylist())


def test_the_rest_catalog_serves_the_same_pipeline(cluster: Any, tmp_path: Path) -> None:
    """Through Iceberg's REST catalog (its warehouse on S3), every ledger trade lands once,
    also after the catalog's database has restarted."""
    _restart(cluster, "postgres")
    home = tmp_path / "home"
    home.mkdir()
    run = LedgerRun(_environment(cluster, "rest", "crest"), home, "test.crest.", 200, WAIT_S)
    with run.running_parts():
        run.start_all()
        run.poll(lambda: run.rows("bronze.binance_trades") > 0, "the first trades in Bronze")
        run.inject_invalid()
        expected = run.wait_for_every_trade()
        codes = run.stop_all()
    assert all(code == 0 for code in codes.values()), codes
    run.assert_ledger_in_gold(expected)
