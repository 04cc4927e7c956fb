"""The cluster's Spark standalone master and workers, from the ``pyspark`` package.

The package is a Spark distribution without the start scripts, so each daemon runs in the
foreground through ``bin/spark-class``. Every port is set (master, web UIs, workers), every
daemon binds the loopback address (``SPARK_LOCAL_IP``; the web UIs follow it too), and the
configuration folder is a private empty one, so a ``spark-defaults.conf`` of the machine does
not leak in. The master's ``/json/`` page is the truth about which workers are alive.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from k2.config import StackSettings
from k2.errors import ArtifactsMissingError
from k2.stack.java import find_java
from k2.stack.ports import ensure_port_free
from k2.stack.process import ManagedProcess

DAEMON_HEAP = "256m"
_MASTER = "org.apache.spark.deploy.master.Master"
_WORKER = "org.apache.spark.deploy.worker.Worker"


def spark_home() -> Path:
    """The Spark distribution inside the installed ``pyspark`` package."""
    import pyspark  # noqa: PLC0415 - importing pyspark is slow; only the cluster needs it

    home = Path(pyspark.__file__).parent
    if not (home / "bin" / "spark-class").exists():
        raise ArtifactsMissingError(
            f"{home}/bin/spark-class missing: the pyspark package is incomplete; reinstall K2's "
            "Python packages (make venv)"
        )
    return home


class _SparkDaemon:
    """What the master and a worker share: how a daemon is started through spark-class."""

    name: str
    process: ManagedProcess

    def __init__(self, stack: StackSettings, dir: Path, home: Path, port: int, ui_port: int):
        self.stack = stack
        self.dir = dir
        self.home = home
        self.port = port
        self.ui_port = ui_port

    def version(self) -> str:
        try:
            import pyspark  # noqa: PLC0415 - pyspark may be absent: the version is unknown
        except ImportError:
            return "unknown"
        return str(pyspark.__version__)

    def unavailable(self) -> str | None:
        """Never skipped: the cluster's jobs run on it."""
        return None

    def stop(self) -> bool:
        return self.process.stop(self.stack.stop_timeout_s)

    def _launch(self, main: str, args: list[str], hint: str) -> None:
        spark = spark_home()
        java, _ = find_java(17, self.stack.java_home, "K2_STACK__JAVA_HOME")
        host = self.stack.host
        ensure_port_free(host, self.port, f"{self.name} port", hint)
        ensure_port_free(host, self.ui_port, f"{self.name} web UI", hint)
        conf = self.dir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        # spark-class reads the daemon's JVM flags from here; the marks make the JVM ours.
        flags = " ".join(f'"{mark}"' for mark in self.process.marks())
        env = {
            "SPARK_HOME": str(spark),
            "JAVA_HOME": str(java.parent.parent),
            "SPARK_CONF_DIR": str(conf),
            "SPARK_LOG_DIR": str(self.dir),
            "SPARK_LOCAL_IP": host,
            "SPARK_DAEMON_MEMORY": DAEMON_HEAP,
            "SPARK_DAEMON_JAVA_OPTS": flags,
        }
        argv = [str(spark / "bin" / "spark-class"), main, *args]
        self.process.start(argv, cwd=self.dir, env=env)


class SparkMaster(_SparkDaemon):
    """Start, stop and inspect the cluster's Spark standalone master."""

    name = "spark-master"

    def __init__(
        self,
        stack: StackSettings,
        dir: Path,
        home: Path,
        port: int,
        ui_port: int,
        workers: int,
        hint: str,
    ) -> None:
        super().__init__(stack, dir, home, port, ui_port)
        self.workers = workers
        self.hint = hint
        self.process = ManagedProcess(self.name, dir, home=home)

    @property
    def address(self) -> str:
        return f"spark://{self.stack.host}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.stack.host}:{self.ui_port}"

    def state(self) -> dict[str, Any] | None:
        """The master's ``/json/`` page (its status and every worker it knows), or None."""
        try:
            with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=2) as resp:  # noqa: S310 - loopback URL built by K2
                data: dict[str, Any] = json.load(resp)
                return data
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def alive_workers(self) -> list[dict[str, Any]]:
        """The workers the master lists as ALIVE."""
        state = self.state() or {}
        return [w for w in state.get("workers", ()) if w.get("state") == "ALIVE"]

    def answering(self) -> bool:
        state = self.state()
        return state is not None and state.get("status") == "ALIVE"

    def healthy(self) -> bool:
        """The master is ALIVE and lists the expected number of ALIVE workers."""
        return self.answering() and len(self.alive_workers()) >= self.workers

    def start(self) -> bool:
        """Start the master unless it runs already (healthy once its workers join too). True if
        it was started now."""
        if self.process.info() is not None:
            return False
        host = self.stack.host
        args = ["--host", host, "--port", str(self.port), "--webui-port", str(self.ui_port)]
        self._launch(_MASTER, args, self.hint)
        self.process.wait_until(self.answering, self.stack.start_timeout_s, "answering")
        return True


class SparkWorker(_SparkDaemon):
    """Start, stop and inspect one Spark standalone worker of the cluster's master."""

    def __init__(
        self,
        stack: StackSettings,
        dir: Path,
        home: Path,
        ports: tuple[int, int],
        master: SparkMaster,
        resources: tuple[int, str],
        hint: str,
    ) -> None:
        super().__init__(stack, dir, home, *ports)
        self.name = dir.name
        self.master = master
        self.cores, self.memory = resources
        self.hint = hint
        self.process = ManagedProcess(self.name, dir, home=home)

    @property
    def address(self) -> str:
        return f"{self.stack.host}:{self.port}"

    def healthy(self) -> bool:
        """The master lists this worker (by its port) as ALIVE."""
        return any(w.get("port") == self.port for w in self.master.alive_workers())

    def start(self) -> bool:
        """Start the worker unless it runs already, and wait until the master lists it as ALIVE.
        True if it was started now."""
        if self.process.info() is not None:
            return False
        args = [
            *("--host", self.stack.host, "--port", str(self.port)),
            *("--webui-port", str(self.ui_port)),
            *("--cores", str(self.cores), "--memory", self.memory),
            *("--work-dir", str(self.dir / "work")),
            self.master.address,
        ]
        self._launch(_WORKER, args, self.hint)
        self.process.wait_until(self.healthy, self.stack.start_timeout_s, "alive at the master")
        return True
