"""The cluster's Iceberg REST catalog: Iceberg's reference server (``iceberg-open-api``).

The server is configured only by ``CATALOG_*`` environment variables: the name after the prefix
is lower-cased, ``__`` becomes ``-`` and ``_`` becomes ``.`` (``CATALOG_S3_ACCESS__KEY__ID`` is
``s3.access-key-id``). Its backend here is a JDBC catalog on the PostgreSQL database
``iceberg_rest``, and its warehouse is ``s3://<bucket>/rest-warehouse`` through S3FileIO on the
cluster's object store. Secrets reach it through the environment of its process, never its
command line.

The server takes a port (``rest.port``) but no address: it listens on every interface of the
machine (Jetty's ``Server(port)``), the one server of the cluster that is not loopback-only. It
asks clients for no credentials either, so it is never told to hand out the S3 keys with the
tables it loads (``include-credentials``): clients bring their own S3 settings, and its
``/v1/config`` gives them none.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from k2.config import StackSettings
from k2.errors import ArtifactsMissingError
from k2.stack.cluster.object_store import S3Access
from k2.stack.cluster.postgres import ROLE, PostgresAccess
from k2.stack.java import find_java
from k2.stack.ports import ensure_port_free
from k2.stack.process import ManagedProcess

DATABASE = "iceberg_rest"
HEAP = "256m"
_MAIN = "org.apache.iceberg.rest.RESTCatalogServer"


def catalog_variable(name: str) -> str:
    """The environment variable the server reads as catalog property ``name``."""
    return "CATALOG_" + name.replace("-", "__").replace(".", "_").upper()


class RestCatalogServer:
    """Start, stop and inspect the cluster's Iceberg REST catalog server."""

    name = "rest-catalog"

    def __init__(
        self,
        stack: StackSettings,
        dir: Path,
        home: Path,
        port: int,
        postgres: PostgresAccess,
        s3: S3Access,
        warehouse: str,
        hint: str,
    ) -> None:
        self.stack = stack
        self.dir = dir
        self.port = port
        self.postgres = postgres
        self.s3 = s3
        self.warehouse = warehouse
        self.hint = hint
        self.lib = stack.jvm_lib / "rest-catalog"
        self.process = ManagedProcess("rest-catalog", dir, home=home)

    @property
    def address(self) -> str:
        return f"http://{self.stack.host}:{self.port}"

    def version(self) -> str:
        jars = sorted(self.lib.glob("iceberg-open-api-*.jar"))
        return jars[0].stem.removeprefix("iceberg-open-api-") if jars else "unknown"

    def unavailable(self) -> str | None:
        """Never skipped: the REST catalog is one of the two catalogs the cluster offers."""
        return None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.address}/v1/config", timeout=2) as resp:  # noqa: S310 - loopback URL built by K2
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def start(self) -> bool:
        """Start the server unless it runs already. True if it was started now."""
        if self.process.info() is not None:
            return False
        jars = sorted(self.lib.glob("*.jar"))
        if not any(jar.name.startswith("iceberg-open-api-") for jar in jars) or not any(
            jar.name.startswith("postgresql-") for jar in jars
        ):
            raise ArtifactsMissingError(
                f"Iceberg REST catalog server or PostgreSQL driver missing in {self.lib}; run "
                "`make jvm` to fetch them with Maven"
            )
        java, _ = find_java(17, self.stack.java_home, "K2_STACK__JAVA_HOME")
        # Jetty binds every interface on this port; the check covers the loopback one.
        ensure_port_free(self.stack.host, self.port, "Iceberg REST catalog", self.hint)
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(java),
            f"-Xmx{HEAP}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            *self.process.marks(),
            # The server logs its catalog properties, secrets included, at INFO when it starts.
            f"-Dorg.slf4j.simpleLogger.log.{_MAIN}=warn",
            "-cp",
            ":".join(str(jar) for jar in jars),
            _MAIN,
        ]
        self.process.start(argv, cwd=self.dir, env=self.environment())
        self.process.wait_until(self.healthy, self.stack.start_timeout_s, "healthy")
        return True

    def stop(self) -> bool:
        return self.process.stop(self.stack.stop_timeout_s)

    def properties(self) -> dict[str, str]:
        """The server's catalog properties (secrets included)."""
        return {
            "catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
            "uri": self.postgres.jdbc_url(DATABASE),
            "jdbc.user": ROLE,
            "jdbc.password": self.postgres.password,
            "jdbc.schema-version": "V1",
            "warehouse": self.warehouse,
            "io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
            "s3.endpoint": self.s3.endpoint,
            "s3.path-style-access": "true",
            "s3.access-key-id": self.s3.access_key,
            "s3.secret-access-key": self.s3.secret_key,
            "client.region": self.s3.region,
            "rest.port": str(self.port),
        }

    def environment(self) -> dict[str, str]:
        """The server's environment: its catalog properties as ``CATALOG_*`` variables."""
        env = {catalog_variable(name): value for name, value in self.properties().items()}
        # The AWS SDK's own region lookup would otherwise try the EC2 metadata service.
        env["AWS_REGION"] = self.s3.region
        return env
