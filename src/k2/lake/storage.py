"""Where the lake's files live, told to each engine in its own words.

The warehouse is a local folder or an S3-compatible object store. For an object store every
engine gets the same endpoint, region, addressing style and credentials: Spark through Iceberg's
``S3FileIO`` (catalog properties) and, for a streaming checkpoint in the store, Hadoop's S3A
connector; pyiceberg through its own S3 file IO (pyarrow); DuckDB through a secret of its
``httpfs`` extension. Without keys in the settings each one uses the standard AWS credential
chain (environment, profile, instance role).

Spark's own file system layer (Hadoop) reads ``s3://`` through the S3A connector.

Every function returns the non-secret options apart from the secret ones, so callers can put the
secrets only where no log or process listing shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from k2.config import LakeSettings

OBJECT_STORE_SCHEMES = ("s3://", "s3a://")


@dataclass(frozen=True)
class Options:
    """An engine's options: ``public`` may be shown; ``secret`` must never be logged."""

    public: dict[str, str] = field(default_factory=dict)
    secret: dict[str, str] = field(default_factory=dict)

    @property
    def merged(self) -> dict[str, str]:
        return {**self.public, **self.secret}


def is_object_store(location: str | None) -> bool:
    """True for an ``s3://`` (or ``s3a://``) location."""
    return location is not None and location.startswith(OBJECT_STORE_SCHEMES)


def uses_object_store(lake: LakeSettings) -> bool:
    """The lake's files are (or may be, behind a REST catalog) in an object store."""
    return (
        is_object_store(lake.warehouse)
        or bool(lake.s3_endpoint)
        or lake.s3_access_key_id is not None
    )


def _keys(lake: LakeSettings) -> tuple[str, str] | None:
    if lake.s3_access_key_id is None or lake.s3_secret_access_key is None:
        return None
    return lake.s3_access_key_id.get_secret_value(), lake.s3_secret_access_key.get_secret_value()


def iceberg_io(lake: LakeSettings) -> Options:
    """Iceberg catalog properties (Spark, the REST server's clients): ``S3FileIO`` for the object
    store. Empty for a local warehouse (Iceberg's default Hadoop file IO)."""
    if not uses_object_store(lake):
        return Options()
    public = {
        # Resolves each file's scheme: S3FileIO for s3://, Hadoop's for local files, so tables
        # written before a move to the object store stay readable.
        "io-impl": "org.apache.iceberg.io.ResolvingFileIO",
        "client.region": lake.s3_region,
        "s3.path-style-access": str(lake.s3_path_style_access).lower(),
    }
    if lake.s3_endpoint:
        public["s3.endpoint"] = lake.s3_endpoint
    keys = _keys(lake)
    secret = {"s3.access-key-id": keys[0], "s3.secret-access-key": keys[1]} if keys else {}
    return Options(public, secret)


def pyiceberg_io(lake: LakeSettings) -> Options:
    """pyiceberg's file IO properties for the object store (its pyarrow S3 file system)."""
    if not uses_object_store(lake):
        return Options()
    public = {"s3.region": lake.s3_region}
    if lake.s3_endpoint:
        public["s3.endpoint"] = lake.s3_endpoint
        # pyarrow addresses a custom endpoint path-style unless told otherwise.
        public["s3.force-virtual-addressing"] = str(not lake.s3_path_style_access).lower()
    keys = _keys(lake)
    secret = {"s3.access-key-id": keys[0], "s3.secret-access-key": keys[1]} if keys else {}
    return Options(public, secret)


def hadoop_s3(lake: LakeSettings) -> Options:
    """Hadoop's configuration for ``s3://`` locations, served by its S3A connector: Spark's
    streaming checkpoint in the store, and the listing of a table's files when ``k2 lake
    maintain`` looks for orphans (which must list them under the scheme the table records)."""
    public = {
        "fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "fs.s3a.endpoint.region": lake.s3_region,
        "fs.s3a.path.style.access": str(lake.s3_path_style_access).lower(),
    }
    if lake.s3_endpoint:
        parts = urlsplit(lake.s3_endpoint)
        public["fs.s3a.endpoint"] = lake.s3_endpoint
        public["fs.s3a.connection.ssl.enabled"] = str(parts.scheme == "https").lower()
    keys = _keys(lake)
    if keys is None:
        return Options(public)
    public["fs.s3a.aws.credentials.provider"] = (
        "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    )
    return Options(public, {"fs.s3a.access.key": keys[0], "fs.s3a.secret.key": keys[1]})


def duckdb_secret_sql(lake: LakeSettings) -> str | None:
    """The ``CREATE SECRET`` statement that lets DuckDB's httpfs read the object store (it holds
    the keys: run it, never log it); None for a local warehouse."""
    if not uses_object_store(lake):
        return None
    options = ["TYPE s3", f"REGION {_quoted(lake.s3_region)}"]
    keys = _keys(lake)
    if keys is None:
        options.append("PROVIDER credential_chain")
    else:
        options += [f"KEY_ID {_quoted(keys[0])}", f"SECRET {_quoted(keys[1])}"]
    if lake.s3_endpoint:
        parts = urlsplit(lake.s3_endpoint)
        options += [f"ENDPOINT {_quoted(parts.netloc)}", f"USE_SSL {parts.scheme == 'https'}"]
    options.append(f"URL_STYLE {_quoted('path' if lake.s3_path_style_access else 'vhost')}")
    return f"CREATE OR REPLACE SECRET k2_lake ({', '.join(options)})"


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
