"""The streaming job on the local cluster beside Spark's local mode, in the same run.

The cluster topology on this one machine: three KRaft brokers, PostgreSQL holding the JDBC
catalog, the warehouse and the checkpoint on the S3 object store, the job's executors on a Spark
standalone master's two workers. The same measurements as the local streaming benchmark run on
both: 1,000,000 records through every layer (rows/s, beside a plain Spark copy), and freshness at
5,000 trades/s. What the object store costs is its server's CPU over the cluster's throughput run
and the time the layers' steps took there against local files.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.bench_stream import local_pipeline, measure_pipeline
from bench.services import settings_from
from k2.config import StackSettings
from k2.stack.cluster import LocalCluster


def _cpu_s(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        process = psutil.Process(pid)
        times = [process.cpu_times(), *(c.cpu_times() for c in process.children(recursive=True))]
    except psutil.Error:
        return 0.0
    return sum(t.user + t.system for t in times)


def _cluster_pipeline(folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o711)  # PostgreSQL runs as its own account when this runs as root
    cluster = LocalCluster(StackSettings(home=folder, start_timeout_s=180))
    started = time.perf_counter()
    cluster.up()
    up_s = time.perf_counter() - started
    try:
        env = cluster.environment("jdbc")
        env["K2_EXCHANGES"] = '["kraken"]'
        env["K2_STREAM__CHECKPOINT_DIR"] = "s3://k2-lake/checkpoints/bench"
        settings = settings_from(env, folder / "k2")
        store = cluster.object_store.process.info()
        store_before = _cpu_s(store.pid if store else None)
        result = measure_pipeline(settings, folder)
        store_cpu = _cpu_s(store.pid if store else None) - store_before
    finally:
        cluster.down()
    return {**result, "cluster_up_s": round(up_s, 1), "object_store_cpu_s": round(store_cpu, 1)}


def run() -> dict[str, Any]:
    local_dir = Path(tempfile.mkdtemp(prefix="k2-bench-local-"))
    cluster_dir = Path(tempfile.mkdtemp(prefix="k2-bench-cluster-"))
    try:
        local = local_pipeline(local_dir)
        cluster = _cluster_pipeline(cluster_dir)
    finally:
        shutil.rmtree(local_dir, ignore_errors=True)
        shutil.rmtree(cluster_dir, ignore_errors=True)
    local_rate = local["throughput"]["rows_per_s"]
    cluster_rate = cluster["throughput"]["rows_per_s"]
    trigger = cluster["freshness"]["trigger_interval_s"]
    steps = {
        step: {"local_s": local["throughput"]["seconds_per_step"].get(step), "cluster_s": s}
        for step, s in cluster["throughput"]["seconds_per_step"].items()
    }
    return {
        "local": local,
        "cluster": cluster,
        "cluster_to_local_rows_per_s": round(cluster_rate / local_rate, 2),
        "target": {
            "cluster_to_local_rows_per_s": 0.5,
            "cluster_freshness_p99_s": trigger + 5,
        },
        "object_store": {
            "server_cpu_s_over_the_run": cluster["object_store_cpu_s"],
            "seconds_per_step": steps,
        },
    }
