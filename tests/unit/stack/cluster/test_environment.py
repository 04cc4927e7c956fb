"""The local cluster's settings for K2 and its env file, without any server."""

from __future__ import annotations

import subprocess
from pathlib import Path

from k2.config import StackSettings
from k2.stack.cluster import LocalCluster
from k2.stack.cluster.environment import export_lines

COMMON = {
    "K2_KAFKA__BOOTSTRAP_SERVERS",
    "K2_KAFKA__REPLICATION_FACTOR",
    "K2_REGISTRY__URL",
    "K2_LAKE__CATALOG_TYPE",
    "K2_LAKE__CATALOG_URI",
    "K2_LAKE__S3_ENDPOINT",
    "K2_LAKE__S3_REGION",
    "K2_LAKE__S3_PATH_STYLE_ACCESS",
    "K2_LAKE__S3_ACCESS_KEY_ID",
    "K2_LAKE__S3_SECRET_ACCESS_KEY",
    "K2_SPARK__MASTER",
    "K2_SPARK__MASTER_UI_URL",
    "K2_STREAM__CHECKPOINT_DIR",
}
JDBC_ONLY = {"K2_LAKE__CATALOG_USER", "K2_LAKE__CATALOG_PASSWORD", "K2_LAKE__WAREHOUSE"}


def _cluster(tmp_path: Path, **kwargs: int) -> LocalCluster:
    return LocalCluster(StackSettings(home=tmp_path / "home"), **kwargs)


def test_environment_names_point_k2_at_every_part(tmp_path: Path) -> None:
    """The JDBC environment names the PostgreSQL catalog and its S3 warehouse; the REST one
    leaves the warehouse and the database credentials to the server."""
    cluster = _cluster(tmp_path)
    jdbc, rest = cluster.environment("jdbc"), cluster.environment("rest")
    assert set(jdbc) == COMMON | JDBC_ONLY
    assert set(rest) == COMMON
    ports = cluster.state.ports
    assert jdbc["K2_KAFKA__BOOTSTRAP_SERVERS"] == ",".join(
        f"127.0.0.1:{ports[f'kafka-{i}']}" for i in (1, 2, 3)
    )
    assert jdbc["K2_KAFKA__REPLICATION_FACTOR"] == "3"
    assert (
        jdbc["K2_LAKE__CATALOG_URI"] == f"jdbc:postgresql://127.0.0.1:{ports['postgres']}/iceberg"
    )
    assert rest["K2_LAKE__CATALOG_URI"] == f"http://127.0.0.1:{ports['rest-catalog']}"
    assert jdbc["K2_REGISTRY__URL"].endswith("/apis/ccompat/v7")
    assert jdbc["K2_SPARK__MASTER"] == f"spark://127.0.0.1:{ports['spark-master']}"
    assert jdbc["K2_LAKE__WAREHOUSE"].startswith("s3://")


def test_env_file_is_private_and_sources_back_exactly(tmp_path: Path) -> None:
    """The env file is mode 0600 and a shell that sources it gets every value exactly."""
    cluster = _cluster(tmp_path)
    path = cluster.write_env_file("jdbc")
    assert path.stat().st_mode & 0o777 == 0o600
    env = cluster.environment("jdbc")
    script = f"source {path}; " + "; ".join(f'printf "%s\\n" "${name}"' for name in env)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == list(env.values())


def test_printed_lines_hide_secret_values(tmp_path: Path) -> None:
    """What the terminal shows never holds the catalog password or the S3 secret key."""
    env = _cluster(tmp_path).environment("jdbc")
    shown = "\n".join(export_lines(env, reveal=False))
    assert env["K2_LAKE__CATALOG_PASSWORD"] not in shown
    assert env["K2_LAKE__S3_SECRET_ACCESS_KEY"] not in shown
    assert "export K2_LAKE__CATALOG_PASSWORD=... (in the env file)" in shown
