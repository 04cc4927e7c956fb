"""The Iceberg catalog ``k2``, opened the same way from pyiceberg, Spark and DuckDB.

By default the catalog is a JDBC catalog on a SQLite file in the state folder with a local
warehouse folder; a PostgreSQL JDBC URL or an Iceberg REST URL in the settings moves it to a shared
service with no code change. Spark opens it through Iceberg's ``JdbcCatalog``/``RESTCatalog``,
pyiceberg through ``SqlCatalog``/``RestCatalog`` under the same name ``k2``, and DuckDB reads a
table's current metadata file as resolved by the catalog.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

from k2.config import LakeAccess, LakeSettings
from k2.errors import LakeError
from k2.lake import storage

CATALOG_NAME = "k2"
NAMESPACES = ("bronze", "silver", "gold")


def _sqlalchemy_uri(jdbc_uri: str, user: str | None, password: str | None) -> str:
    """pyiceberg's SQLAlchemy URI for the JDBC URI Spark uses."""
    if jdbc_uri.startswith("jdbc:sqlite:"):
        # Both sides wait for each other's commits instead of failing with "database is locked".
        return f"sqlite:///{sqlite_path(jdbc_uri)}?timeout=30"
    if jdbc_uri.startswith("jdbc:postgresql://"):
        rest = jdbc_uri.removeprefix("jdbc:postgresql://")
        auth = ""
        if user:
            auth = quote(user) + (f":{quote(password)}" if password else "") + "@"
        return f"postgresql+psycopg2://{auth}{rest}"
    raise LakeError(
        f"unsupported catalog URI {jdbc_uri!r}; use jdbc:sqlite:/abs/path, "
        f"jdbc:postgresql://host/db or K2_LAKE__CATALOG_TYPE=rest"
    )


def sqlite_path(jdbc_uri: str) -> Path:
    """The database file of a ``jdbc:sqlite:`` URI (its ``?pragma=...`` options dropped)."""
    return Path(jdbc_uri.removeprefix("jdbc:sqlite:").split("?", 1)[0]).resolve()


def pyiceberg_properties(access: LakeAccess) -> dict[str, str]:
    """pyiceberg's properties of the catalog ``k2`` (secrets included: never log them)."""
    lake = access.settings
    password = lake.catalog_password.get_secret_value() if lake.catalog_password else None
    io = storage.pyiceberg_io(lake).merged
    if lake.catalog_type == "rest":
        props = {"type": "rest", "uri": access.catalog_uri, **io}
        if lake.warehouse:
            props["warehouse"] = lake.warehouse
        if lake.catalog_token is not None:
            props["token"] = lake.catalog_token.get_secret_value()
        elif password:
            props["credential"] = f"{lake.catalog_user or ''}:{password}"
        return props
    return {
        "type": "sql",
        "uri": _sqlalchemy_uri(access.catalog_uri, lake.catalog_user, password),
        "warehouse": _warehouse_uri(access.warehouse),
        "init_catalog_tables": "true",
        **io,
    }


def _warehouse_uri(warehouse: str) -> str:
    if "://" in warehouse:
        return warehouse
    return Path(warehouse).resolve().as_uri()


def open_catalog(lake: LakeAccess) -> Any:
    """The pyiceberg catalog ``k2`` (creating the local SQLite file and warehouse if needed)."""
    from pyiceberg.catalog import load_catalog

    if lake.settings.catalog_type == "jdbc" and lake.catalog_uri.startswith("jdbc:sqlite:"):
        sqlite_path(lake.catalog_uri).parent.mkdir(parents=True, exist_ok=True)
        if "://" not in lake.warehouse:
            Path(lake.warehouse).mkdir(parents=True, exist_ok=True)
    properties = pyiceberg_properties(lake)
    attempts = _INIT_ATTEMPTS
    while True:
        try:
            return load_catalog(CATALOG_NAME, **properties)
        except Exception as exc:  # pyiceberg raises many unrelated types for one cause
            attempts -= 1
            if attempts and _lost_init_race(exc):
                continue
            raise LakeError(
                f"cannot open the Iceberg catalog at {lake.catalog_uri}: {exc}"
            ) from exc


# A catalog opened for the first time creates its tables: pyiceberg checks that they are
# missing, then creates them, so two processes starting at once (``k2 run`` starts the API and
# the streaming job together) can both see them missing and the slower one fails with "already
# exists". By then the tables are there: opening again succeeds.
_INIT_ATTEMPTS = 3


def _lost_init_race(exc: Exception) -> bool:
    return "already exists" in str(exc)


def namespaces(prefix: str = "") -> tuple[str, ...]:
    """The lakehouse's namespaces under ``prefix`` (``LakeSettings.namespace_prefix``)."""
    return tuple(f"{prefix}{namespace}" for namespace in NAMESPACES)


def lake_tables(catalog: Any, prefix: str = "") -> list[str]:
    """Every table of the bronze, silver and gold namespaces (``ns.name``), sorted."""
    existing = {ns[0] for ns in catalog.list_namespaces()}
    return sorted(
        ".".join(identifier)
        for namespace in namespaces(prefix)
        if namespace in existing
        for identifier in catalog.list_tables(namespace)
    )


def ensure_namespaces(catalog: Any, prefix: str = "") -> list[str]:
    """Create the bronze, silver and gold namespaces if missing; return those created."""
    existing = {ns[0] for ns in catalog.list_namespaces()}
    created = []
    for namespace in namespaces(prefix):
        if namespace not in existing:
            catalog.create_namespace_if_not_exists(namespace)
            created.append(namespace)
    return created


def spark_catalog_conf(access: LakeAccess) -> storage.Options:
    """Spark settings that register the same catalog under the name ``k2``; the secret ones
    apart (the session sets them once its JVM runs, so no process listing shows them)."""
    prefix = f"spark.sql.catalog.{CATALOG_NAME}"
    lake = access.settings
    public = {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        # Other writers (pyiceberg, a second job) commit to the same tables: never serve a
        # cached, stale table version.
        f"{prefix}.cache-enabled": "false",
    }
    secret: dict[str, str] = {}
    if lake.catalog_type == "rest":
        public[f"{prefix}.type"] = "rest"
        public[f"{prefix}.uri"] = access.catalog_uri
        if lake.warehouse:
            public[f"{prefix}.warehouse"] = lake.warehouse
        if lake.catalog_token is not None:
            secret[f"{prefix}.token"] = lake.catalog_token.get_secret_value()
        elif lake.catalog_password is not None:
            password = lake.catalog_password.get_secret_value()
            secret[f"{prefix}.credential"] = f"{lake.catalog_user or ''}:{password}"
    else:
        public[f"{prefix}.type"] = "jdbc"
        public[f"{prefix}.uri"] = access.catalog_uri
        public[f"{prefix}.warehouse"] = access.warehouse
        if lake.catalog_user:
            public[f"{prefix}.jdbc.user"] = lake.catalog_user
        if lake.catalog_password is not None:
            secret[f"{prefix}.jdbc.password"] = lake.catalog_password.get_secret_value()
    io = storage.iceberg_io(lake)
    public.update({f"{prefix}.{key}": value for key, value in io.public.items()})
    secret.update({f"{prefix}.{key}": value for key, value in io.secret.items()})
    return storage.Options(public, secret)


def duckdb_connect(lake: LakeSettings) -> Any:
    """A DuckDB connection that reads the lake: the iceberg extension, and for an object store
    httpfs (and aws, for the standard credential chain) with a secret made from the settings;
    every extension loaded from its PyPI package (offline)."""
    import duckdb

    con = duckdb.connect()
    secret = storage.duckdb_secret_sql(lake)
    extensions = ["avro", "iceberg"]
    if secret is not None:
        extensions += ["httpfs"] + (["aws"] if "credential_chain" in secret else [])
    for name in extensions:
        con.execute(f"LOAD '{_duckdb_extension(name)}'")
    if secret is not None:
        con.execute(secret)
    return con


def _duckdb_extension(name: str) -> Path:
    """The extension file of DuckDB's ``duckdb-extension-<name>`` package."""
    try:
        package = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError:
        raise LakeError(f"DuckDB {name} extension missing; reinstall with `make venv`") from None
    files = sorted(Path(str(package.__file__)).parent.glob(f"extensions/*/{name}.duckdb_extension"))
    if not files:
        raise LakeError(f"DuckDB {name} extension missing; reinstall with `make venv`")
    return files[-1]


def duckdb_scan_sql(lake: LakeAccess, identifier: str) -> str:
    """A DuckDB ``iceberg_scan`` over the current snapshot of ``identifier`` (``ns.table``)."""
    table = open_catalog(lake).load_table(identifier)
    location = str(table.metadata_location).replace("'", "''")
    return f"iceberg_scan('{location}')"
