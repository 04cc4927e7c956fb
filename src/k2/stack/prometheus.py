"""A local Prometheus server, so a laptop user has history and alerts without deploying one.

``k2 stack up`` starts it when ``K2_PROMETHEUS__LOCAL`` allows (``auto``: when the binary is
installed and its port is free) with the scrape config and alert rules generated from the same
settings as the services (:mod:`k2.monitoring.prometheus_config`), written into
``K2_HOME/prometheus``; its samples stay in ``K2_HOME/prometheus/data``.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from k2.config import Settings
from k2.errors import ArtifactsMissingError, K2Error
from k2.monitoring.prometheus_config import scrape_targets, write_prometheus_files
from k2.stack.ports import ensure_port_free, port_holder
from k2.stack.process import ManagedProcess

_VERSION = re.compile(r"version (\S+)")


@functools.cache
def binary_version(binary: Path) -> str:
    """``prometheus --version``'s version, or ``unknown``."""
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    match = _VERSION.search(out.stdout + out.stderr)
    return match.group(1) if match else "unknown"


class LocalPrometheus:
    """Start, stop and inspect the local Prometheus of the stack's state folder."""

    name = "prometheus"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.options = settings.prometheus
        self.host = settings.stack.host
        self.dir = settings.stack.state_dir / "prometheus"
        self.config = self.dir / "prometheus.yml"
        # Prometheus takes no free-form flag: its config path, inside the state folder, is the
        # mark that makes a process this service.
        self.process = ManagedProcess(self.name, self.dir, marker=f"--config.file={self.config}")

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.options.port}"

    def binary(self) -> Path | None:
        if self.options.binary is not None:
            return self.options.binary if self.options.binary.exists() else None
        found = shutil.which("prometheus")
        return Path(found) if found else None

    def unavailable(self) -> str | None:
        """Why ``auto`` skips the server (None: it can start). With ``on`` nothing is skipped:
        :meth:`start` raises the reason instead."""
        if self.options.local != "auto" or self.process.info() is not None:
            return None
        if self.binary() is None:
            return "not installed; apt-get install prometheus, or set K2_PROMETHEUS__LOCAL=off"
        holder = port_holder(self.host, self.options.port)
        if holder is not None:
            return f"port {self.options.port} is held by {holder}; set K2_PROMETHEUS__PORT"
        settings = self.settings
        targets = scrape_targets(
            settings.stack.host, settings.exchanges, settings.ingest, settings.stream, settings.api
        )
        if any(target.port == 0 for target in targets):
            return "metrics ports are picked at start (port 0), so there is nothing to scrape"
        return None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.address}/-/ready", timeout=2) as resp:  # noqa: S310 - loopback URL built by K2
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def version(self) -> str:
        try:
            with urllib.request.urlopen(  # noqa: S310 - loopback URL built by K2
                f"{self.address}/api/v1/status/buildinfo", timeout=2
            ) as resp:
                return str(json.load(resp)["data"]["version"])
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            binary = self.binary()
            return binary_version(binary) if binary is not None else "not installed"

    def start(self) -> bool:
        """Start the server unless it runs already. True if it was started now."""
        if self.process.info() is not None:
            return False
        binary = self.binary()
        if binary is None:
            raise ArtifactsMissingError(
                "prometheus not found (K2_PROMETHEUS__LOCAL=on); apt-get install prometheus or "
                "set K2_PROMETHEUS__BINARY"
            )
        ensure_port_free(self.host, self.options.port, "Prometheus", "K2_PROMETHEUS__PORT")
        try:
            write_prometheus_files(self.settings, self.dir)
        except K2Error as exc:
            raise K2Error(f"the local Prometheus cannot start: {exc}") from exc
        self.process.start(
            [
                str(binary),
                self.process.marker,
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--storage.tsdb.retention.time={self.options.retention}",
                f"--web.listen-address={self.host}:{self.options.port}",
            ],
            cwd=self.dir,
        )
        self.process.wait_until(self.healthy, self.settings.stack.start_timeout_s, "ready")
        return True

    def stop(self) -> bool:
        return self.process.stop(self.settings.stack.stop_timeout_s)
