"""The Spark session every K2 job uses.

``local[*]`` by default, any master from settings. The Maven-fetched jars (Kafka source, Avro,
Iceberg runtime and its AWS bundle, Hadoop's S3A connector, JDBC drivers) go on ``spark.jars``,
which a cluster's executors fetch from the driver, and on the driver class path (the JDBC driver
must be visible to the driver's class loader for the catalog). The Iceberg catalog ``k2`` is the
same one pyiceberg and DuckDB open.

Credentials (the catalog's, the object store's) never go on a command line, where a process
listing would show them: PySpark starts the driver's JVM with the settings on its command line,
so they are set on the running session instead, and reach the executors inside the tasks.

Under ``spark-submit`` the driver's JVM is running before any K2 code: the jars must be on the
command line, which is what :func:`write_submit_properties` is for (``k2 job spark-conf``), and
what spark-submit was given (``--master``, ``--conf``) wins over K2's settings.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from k2.config import SparkSetup
from k2.errors import ArtifactsMissingError
from k2.lake.catalog import CATALOG_NAME, open_catalog, spark_catalog_conf
from k2.lake.storage import hadoop_s3, is_object_store, uses_object_store


def spark_jars(jvm_lib: Path) -> list[Path]:
    jars = sorted((jvm_lib / "spark").glob("*.jar"))
    if not any(jar.name.startswith("iceberg-spark-runtime") for jar in jars):
        raise ArtifactsMissingError(
            f"Spark jars missing in {jvm_lib / 'spark'}; run `make jvm` to fetch them with Maven"
        )
    return jars


# Spark hides the values of settings whose names match this in its UI, event logs and plans;
# its default misses Iceberg's ``s3.access-key-id`` and the REST catalog's ``credential``.
REDACTED = "(?i)secret|password|token|credential|access[.-]?key"


def session_conf(setup: SparkSetup, app_name: str) -> dict[str, str]:
    """Every Spark setting K2 sets but the secret ones, so ``spark-submit`` users can see and
    reuse them (:func:`secret_conf` has the rest)."""
    jars = spark_jars(setup.jvm_lib)
    spark = setup.spark
    hadoop = hadoop_s3(setup.lake.settings) if _hadoop_needs_s3(setup) else None
    conf = {
        "spark.app.name": app_name,
        "spark.master": spark.master,
        "spark.jars": ",".join(str(jar) for jar in jars),
        "spark.driver.extraClassPath": ":".join(str(jar) for jar in jars),
        "spark.executor.extraClassPath": ":".join(str(jar) for jar in jars),
        "spark.driver.memory": spark.driver_memory,
        "spark.driver.bindAddress": setup.host,
        "spark.driver.host": setup.host,
        "spark.ui.enabled": str(spark.ui_enabled).lower(),
        "spark.redaction.regex": REDACTED,
        "spark.sql.redaction.options.regex": REDACTED,
        "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.sql.defaultCatalog": "k2",
        "spark.sql.ansi.enabled": "true",
        **spark_catalog_conf(setup.lake).public,
        **({f"spark.hadoop.{k}": v for k, v in hadoop.public.items()} if hadoop else {}),
        **spark.conf,
    }
    return conf


def secret_conf(setup: SparkSetup) -> dict[str, str]:
    """The Spark settings that hold credentials (the catalog's, the object store's): set on the
    running session, never on a command line."""
    conf = dict(spark_catalog_conf(setup.lake).secret)
    if _hadoop_needs_s3(setup):
        secret = hadoop_s3(setup.lake.settings).secret
        conf.update({f"spark.hadoop.{k}": v for k, v in secret.items()})
    return conf


def _hadoop_needs_s3(setup: SparkSetup) -> bool:
    return uses_object_store(setup.lake.settings) or is_object_store(setup.checkpoint)


def write_submit_properties(setup: SparkSetup, path: Path) -> Path:
    """K2's Spark settings as a ``spark-submit --properties-file``, readable only by its owner
    (the catalog's credentials are in it)."""
    conf = {**session_conf(setup, "k2"), **secret_conf(setup)}
    del conf["spark.app.name"]  # each job names itself
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("# K2's Spark properties for spark-submit --properties-file; written by k2\n")
        for key, value in sorted(conf.items()):
            out.write(f"{key} {_properties_value(value)}\n")
    path.chmod(0o600)
    return path


def _properties_value(value: str) -> str:
    """A value as java.util.Properties reads it back: backslashes and line breaks escaped,
    leading blanks kept."""
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    stripped = escaped.lstrip(" ")
    return "\\ " * (len(escaped) - len(stripped)) + stripped


def submitted_conf() -> dict[str, str]:
    """The properties spark-submit started this driver with; empty when not under spark-submit
    (only spark-submit hands a Python driver a running JVM through ``PYSPARK_GATEWAY_PORT``)."""
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return {}
    from pyspark import SparkConf, SparkContext  # noqa: PLC0415 - pyspark under spark-submit only

    SparkContext._ensure_initialized()
    return dict(SparkConf().getAll())


def build_session(setup: SparkSetup, app_name: str) -> Any:
    """Get or create the Spark session configured for K2."""
    from pyspark.sql import SparkSession  # noqa: PLC0415 - the doctor's spark_jars needs no pyspark

    if setup.lake.settings.catalog_type == "jdbc":
        open_catalog(setup.lake)  # creates the catalog tables Spark expects
    # Python UDFs (the bars' exact VWAP) run in worker processes that must import k2: unless
    # told otherwise, they run in this interpreter (PySpark reads only the environment for it).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    given = submitted_conf()
    builder = SparkSession.builder
    for key, value in session_conf(setup, app_name).items():
        if key not in given or key == "spark.app.name":
            builder = builder.config(key, value)
    # PySpark replaces the SIGINT handler with one that cancels every job and raises
    # KeyboardInterrupt; K2's commands stop their queries between batches on Ctrl-C instead.
    on_interrupt = signal.getsignal(signal.SIGINT)
    session = builder.getOrCreate()
    if threading.current_thread() is threading.main_thread() and on_interrupt is not None:
        signal.signal(signal.SIGINT, on_interrupt)
    session.sparkContext.setLogLevel("WARN")
    _set_secrets(session, {k: v for k, v in secret_conf(setup).items() if k not in given})
    renew_sqlite_catalog_connections(session)
    return session


def _set_secrets(session: Any, conf: dict[str, str]) -> None:
    """Credentials into the running session before anything opens the catalog: the catalog's
    and its file IO's into the SQL settings (streaming queries and executors get them from
    there), the S3A connector's into the Hadoop configuration."""
    hadoop = session.sparkContext._jsc.hadoopConfiguration()
    for key, value in conf.items():
        if key.startswith("spark.hadoop."):
            hadoop.set(key.removeprefix("spark.hadoop."), value)
        else:
            session.conf.set(key, value)


def renew_sqlite_catalog_connections(session: Any) -> None:
    """Replace the catalog's JDBC connection pool once, right after the catalog initialised.

    Iceberg's JdbcCatalog probes the catalog tables during initialisation with a JDBC metadata
    query whose ResultSet it never closes. On SQLite an unfinished statement keeps its
    connection's read transaction open, so that pooled connection stays on the database snapshot
    of start-up: the session would never see tables or commits made by other processes
    (pyiceberg, another job) and its own commits would fail with SQLITE_BUSY_SNAPSHOT. A fresh
    pool after initialisation holds no such statement; every later query closes its own.

    Spark runs each streaming query in a clone of its session with its own catalog instance, so
    a streaming job calls this again inside the query. Other catalogs are left alone.
    """
    conf = session.conf
    prefix = f"spark.sql.catalog.{CATALOG_NAME}"
    if conf.get(f"{prefix}.type", "") != "jdbc" or not str(
        conf.get(f"{prefix}.uri", "")
    ).startswith("jdbc:sqlite:"):
        return
    jvm = session.sparkContext._jvm
    spark_catalog = session._jsparkSession.sessionState().catalogManager().catalog(CATALOG_NAME)
    iceberg_catalog = spark_catalog.icebergCatalog()
    jdbc_class = jvm.java.lang.Class.forName("org.apache.iceberg.jdbc.JdbcCatalog")
    if not jdbc_class.isInstance(iceberg_catalog):
        return
    field = jdbc_class.getDeclaredField("connections")
    field.setAccessible(True)
    stale = field.get(iceberg_catalog)
    props = iceberg_catalog.properties()
    fresh = jvm.org.apache.iceberg.jdbc.JdbcClientPool(props.get("uri"), props)
    field.set(iceberg_catalog, fresh)
    stale.close()
