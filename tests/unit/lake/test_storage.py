"""The object store told to each engine: the same endpoint and keys, secrets kept apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from k2.config import LakeSettings, Settings, StackSettings, StreamSettings
from k2.jobs.session import secret_conf, session_conf
from k2.lake import storage
from k2.lake.catalog import pyiceberg_properties

KEYS = {"s3_access_key_id": "AKIDK2", "s3_secret_access_key": "s3cr3t-value"}
STORE = LakeSettings(
    warehouse="s3://k2-lake/warehouse",
    s3_endpoint="http://127.0.0.1:8333",
    s3_path_style_access=True,
    **KEYS,  # type: ignore[arg-type]
)


def settings(lake: LakeSettings, tmp_path: Path, checkpoint: str | None = None) -> Settings:
    jvm = tmp_path / "jvm"
    (jvm / "spark").mkdir(parents=True, exist_ok=True)
    (jvm / "spark" / "iceberg-spark-runtime-4.0_2.13-1.10.1.jar").touch()
    return Settings(
        stack=StackSettings(home=tmp_path, jvm_lib=jvm),
        lake=lake,
        stream=StreamSettings(checkpoint_dir=checkpoint),
        _env_file=None,  # type: ignore[call-arg]
    )


def test_a_local_warehouse_needs_no_object_store_options() -> None:
    """The default lake is a folder: no engine gets S3 options or a DuckDB secret."""
    lake = LakeSettings()
    assert not storage.uses_object_store(lake)
    assert storage.iceberg_io(lake) == storage.Options()
    assert storage.pyiceberg_io(lake) == storage.Options()
    assert storage.duckdb_secret_sql(lake) is None


def test_every_engine_gets_the_same_endpoint_region_style_and_keys() -> None:
    """Spark's S3FileIO, pyiceberg and DuckDB address the same store the same way."""
    spark = storage.iceberg_io(STORE)
    assert spark.public["s3.endpoint"] == "http://127.0.0.1:8333"
    assert spark.public["s3.path-style-access"] == "true"
    assert spark.secret == {"s3.access-key-id": "AKIDK2", "s3.secret-access-key": "s3cr3t-value"}
    py = storage.pyiceberg_io(STORE)
    assert py.public["s3.endpoint"] == "http://127.0.0.1:8333"
    assert py.public["s3.force-virtual-addressing"] == "false"
    assert py.secret == spark.secret
    sql = storage.duckdb_secret_sql(STORE)
    assert sql is not None
    for part in ("ENDPOINT '127.0.0.1:8333'", "USE_SSL False", "URL_STYLE 'path'", "'AKIDK2'"):
        assert part in sql
    hadoop = storage.hadoop_s3(STORE)
    assert hadoop.public["fs.s3a.endpoint"] == "http://127.0.0.1:8333"
    assert hadoop.secret == {"fs.s3a.access.key": "AKIDK2", "fs.s3a.secret.key": "s3cr3t-value"}


def test_without_keys_each_engine_uses_the_standard_aws_chain() -> None:
    """No keys in the settings: nothing secret is set and DuckDB asks the credential chain."""
    lake = LakeSettings(warehouse="s3://bucket/lake")
    assert storage.iceberg_io(lake).secret == {}
    assert storage.pyiceberg_io(lake).secret == {}
    assert "PROVIDER credential_chain" in (storage.duckdb_secret_sql(lake) or "")
    assert "s3.endpoint" not in storage.iceberg_io(lake).public  # AWS itself


def test_one_key_without_the_other_is_a_settings_error() -> None:
    """An access key id without its secret (or the reverse) is refused at start-up."""
    with pytest.raises(ValueError, match="s3_secret_access_key"):
        LakeSettings(s3_access_key_id="AKIDK2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http"):
        LakeSettings(s3_endpoint="127.0.0.1:8333")


def test_secrets_never_reach_the_spark_command_line(tmp_path: Path) -> None:
    """Spark's launch settings (its JVM's command line) hold no key or password; the secret
    settings hold all of them."""
    lake = LakeSettings.model_validate(
        {**STORE.model_dump(), **KEYS, "catalog_user": "k2", "catalog_password": "pg-password"}
    )
    chosen = settings(lake, tmp_path, "s3://k2-lake/checkpoints/stream")
    public = session_conf(chosen, "k2-test")
    text = repr(public)
    for secret in ("s3cr3t-value", "AKIDK2", "pg-password"):
        assert secret not in text
    hidden = secret_conf(chosen)
    assert hidden["spark.sql.catalog.k2.jdbc.password"] == "pg-password"
    assert hidden["spark.sql.catalog.k2.s3.secret-access-key"] == "s3cr3t-value"
    assert hidden["spark.hadoop.fs.s3a.secret.key"] == "s3cr3t-value"
    assert public["spark.sql.catalog.k2.io-impl"] == "org.apache.iceberg.io.ResolvingFileIO"


def test_pyiceberg_opens_the_same_store_and_a_rest_catalog_with_its_token(tmp_path: Path) -> None:
    """pyiceberg's catalog properties carry the store's options, and a REST catalog's token."""
    props = pyiceberg_properties(settings(STORE, tmp_path))
    assert props["warehouse"] == "s3://k2-lake/warehouse"
    assert props["s3.secret-access-key"] == "s3cr3t-value"
    rest = LakeSettings(
        catalog_type="rest",
        catalog_uri="http://127.0.0.1:8181",
        catalog_token="tok",  # type: ignore[arg-type]
        s3_endpoint="http://127.0.0.1:8333",
        **KEYS,  # type: ignore[arg-type]
    )
    props = pyiceberg_properties(settings(rest, tmp_path))
    assert props["type"] == "rest" and props["token"] == "tok" and "warehouse" not in props
