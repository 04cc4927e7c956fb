"""What a local cluster keeps from one ``up`` to the next: its ports, its Kafka cluster id and
its generated credentials, in ``<state>/cluster/cluster.json``.

Ports are chosen free the first time a server needs one and kept, so the addresses in a
user's environment file stay right across ``down``/``up``. The file holds secrets, so it is
written with mode 0600 (and put back to 0600 when found wider).
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path

from k2.errors import StateCorruptedError
from k2.stack.kafka import new_cluster_id
from k2.stack.ports import free_port

_VERSION = 1
_KEY_ALPHABET = string.ascii_uppercase + string.digits


def new_password() -> str:
    """A password of 32 URL-safe characters (safe in URLs, shell quotes and config files)."""
    return secrets.token_urlsafe(24)


def new_access_key() -> str:
    """An S3 access key id, shaped like AWS's (20 upper-case letters and digits)."""
    return "K2" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(18))


@dataclass
class ClusterState:
    """The ports, Kafka cluster id and credentials of one local cluster."""

    path: Path
    ports: dict[str, int] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)
    kafka_cluster_id: str = field(default_factory=new_cluster_id)
    brokers: int | None = None

    @classmethod
    def load(cls, path: Path) -> ClusterState:
        """The state saved at ``path``, or a new one (nothing is written until :meth:`save`)."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls(path)
        try:
            data = json.loads(text)
            return cls(
                path=path,
                ports={str(k): int(v) for k, v in data["ports"].items()},
                credentials={str(k): str(v) for k, v in data["credentials"].items()},
                kafka_cluster_id=str(data["kafka_cluster_id"]),
                brokers=data.get("brokers"),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StateCorruptedError(
                f"local cluster state {path} is unreadable ({exc}); restore it, or move the "
                f"folder {path.parent} away to start a new cluster (its data is then lost)"
            ) from exc

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def port(self, key: str) -> int:
        """The port kept under ``key``, or a free one chosen now (unique within the cluster)."""
        if key not in self.ports:
            taken = set(self.ports.values())
            port = free_port()
            while port in taken:
                port = free_port()
            self.ports[key] = port
        return self.ports[key]

    def port_setting(self, key: str) -> str:
        """Where the user changes the port kept under ``key`` (for error messages)."""
        return f"ports.{key} in {self.path}"

    def password(self, key: str) -> str:
        """The password kept under ``key``, or a new one made now."""
        if key not in self.credentials:
            self.credentials[key] = new_password()
        return self.credentials[key]

    def access_key(self, key: str) -> str:
        """The S3 access key id kept under ``key``, or a new one made now."""
        if key not in self.credentials:
            self.credentials[key] = new_access_key()
        return self.credentials[key]

    def save(self) -> None:
        """Write the state atomically, readable by its owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "version": _VERSION,
            "brokers": self.brokers,
            "kafka_cluster_id": self.kafka_cluster_id,
            "ports": self.ports,
            "credentials": self.credentials,
        }
        write_private(self.path, json.dumps(data, indent=2) + "\n")


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, mode 0600 from its first byte."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        temporary.chmod(0o600)  # an existing temporary file keeps its mode on open
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
