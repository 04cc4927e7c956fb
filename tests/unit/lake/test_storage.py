"""The object store told to each engine: the same endpoint and keys, secrets kept apart."""

from __future__ import annotations

import pytest

from k2.config import LakeSettings
from k2.lake import storage
from tests.unit.lake.object_store import STORE


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
