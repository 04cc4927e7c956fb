"""The K2 settings that point K2 at a local cluster, and the file a shell sources them from.

Only configuration changes between the embedded stack and the cluster: these variables are the
whole difference. The environment file holds secrets, so it is private to K2's user (0600),
and what K2 prints of it never shows a secret value.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from k2.stack.cluster.state import write_private

CatalogKind = Literal["jdbc", "rest"]
CATALOG_KINDS: tuple[CatalogKind, ...] = ("jdbc", "rest")
_SECRET_WORDS = ("PASSWORD", "SECRET")


@dataclass(frozen=True)
class ClusterAddresses:
    """Where each part of a running cluster answers, and with which credentials."""

    bootstrap_servers: str
    replication_factor: int
    registry_url: str
    jdbc_url: str
    jdbc_user: str
    jdbc_password: str
    rest_url: str
    s3_endpoint: str
    s3_region: str
    s3_access_key: str
    s3_secret_key: str
    bucket: str
    spark_master: str
    spark_master_ui: str


def k2_environment(cluster: ClusterAddresses, catalog: CatalogKind) -> dict[str, str]:
    """K2's settings for the cluster, with the JDBC catalog on PostgreSQL or the REST catalog
    (whose server owns its warehouse, so none is given for it)."""
    env = {
        "K2_KAFKA__BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
        "K2_KAFKA__REPLICATION_FACTOR": str(cluster.replication_factor),
        "K2_REGISTRY__URL": cluster.registry_url,
        "K2_LAKE__CATALOG_TYPE": catalog,
    }
    if catalog == "jdbc":
        env |= {
            "K2_LAKE__CATALOG_URI": cluster.jdbc_url,
            "K2_LAKE__CATALOG_USER": cluster.jdbc_user,
            "K2_LAKE__CATALOG_PASSWORD": cluster.jdbc_password,
            "K2_LAKE__WAREHOUSE": f"s3://{cluster.bucket}/warehouse",
        }
    else:
        env["K2_LAKE__CATALOG_URI"] = cluster.rest_url
    env |= {
        "K2_LAKE__S3_ENDPOINT": cluster.s3_endpoint,
        "K2_LAKE__S3_REGION": cluster.s3_region,
        "K2_LAKE__S3_PATH_STYLE_ACCESS": "true",
        "K2_LAKE__S3_ACCESS_KEY_ID": cluster.s3_access_key,
        "K2_LAKE__S3_SECRET_ACCESS_KEY": cluster.s3_secret_key,
        "K2_SPARK__MASTER": cluster.spark_master,
        "K2_SPARK__MASTER_UI_URL": cluster.spark_master_ui,
        "K2_STREAM__CHECKPOINT_DIR": f"s3://{cluster.bucket}/checkpoints/stream",
    }
    return env


def is_secret(name: str) -> bool:
    """True for a variable whose value must never be shown."""
    return any(word in name for word in _SECRET_WORDS)


def export_lines(env: dict[str, str], *, reveal: bool) -> list[str]:
    """``export NAME=value`` lines (shell-quoted); unless ``reveal``, a secret's value is left
    out and the line says where it is."""
    lines = []
    for name, value in env.items():
        if reveal or not is_secret(name):
            lines.append(f"export {name}={shlex.quote(value)}")
        else:
            lines.append(f"export {name}=... (in the env file)")
    return lines


def write_env_file(path: Path, env: dict[str, str], header: str) -> Path:
    """Write ``env`` as a file for ``source``, readable by its owner only."""
    text = f"# {header}\n" + "\n".join(export_lines(env, reveal=True)) + "\n"
    write_private(path, text)
    return path
