"""The Spark session every K2 job uses.

``local[*]`` by default, any master from settings. The Maven-fetched jars (Kafka source, Avro,
Iceberg runtime, JDBC drivers) go on ``spark.jars`` and on the driver class path (the JDBC driver
must be visible to the driver's class loader for the catalog). The Iceberg catalog ``k2`` is the
same one pyiceberg and DuckDB open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from k2.config import Settings
from k2.errors import ArtifactsMissingError
from k2.lake.catalog import CATALOG_NAME, open_catalog, spark_catalog_conf


def spark_jars(jvm_lib: Path) -> list[Path]:
    jars = sorted((jvm_lib / "spark").glob("*.jar"))
    if not any(jar.name.startswith("iceberg-spark-runtime") for jar in jars):
        raise ArtifactsMissingError(
            f"Spark jars missing in {jvm_lib / 'spark'}; run `make jvm` to fetch them with Maven"
        )
    return jars


def session_conf(settings: Settings, app_name: str) -> dict[str, str]:
    """Every Spark setting K2 sets, so ``spark-submit`` users can see and reuse them."""
    jars = spark_jars(settings.stack.jvm_lib)
    spark = settings.spark
    conf = {
        "spark.app.name": app_name,
        "spark.master": spark.master,
        "spark.jars": ",".join(str(jar) for jar in jars),
        "spark.driver.extraClassPath": ":".join(str(jar) for jar in jars),
        "spark.executor.extraClassPath": ":".join(str(jar) for jar in jars),
        "spark.driver.memory": spark.driver_memory,
        "spark.driver.bindAddress": settings.stack.host,
        "spark.driver.host": settings.stack.host,
        "spark.ui.enabled": str(spark.ui_enabled).lower(),
        "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.sql.defaultCatalog": "k2",
        "spark.sql.ansi.enabled": "true",
        **spark_catalog_conf(settings),
        **spark.conf,
    }
    return conf


def build_session(settings: Settings, app_name: str) -> Any:
    """Get or create the Spark session configured for K2."""
    from pyspark.sql import SparkSession  # noqa: PLC0415 - heavy import, only when used

    if settings.lake.catalog_type == "jdbc":
        open_catalog(settings)  # creates the catalog tables Spark expects
    builder = SparkSession.builder
    for key, value in session_conf(settings, app_name).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    renew_sqlite_catalog_connections(session)
    return session


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
