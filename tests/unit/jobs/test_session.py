"""The Spark session's settings: the submit properties file is private and escaped, and no secret
ever reaches the Spark command line."""

from __future__ import annotations

from pathlib import Path

from k2.config import LakeSettings, Settings, StackSettings
from k2.jobs.session import secret_conf, session_conf, write_submit_properties
from tests.unit.lake.object_store import KEYS, STORE, lake_settings


def test_spark_submit_properties_are_private_and_escaped(tmp_path: Path) -> None:
    """The properties file handed to spark-submit is readable by its owner only, puts the Iceberg
    runtime on both class paths and escapes the catalog password."""
    jars = tmp_path / "jvm" / "spark"
    jars.mkdir(parents=True)
    (jars / "iceberg-spark-runtime-4.0_2.13-1.10.1.jar").touch()
    settings = Settings(
        stack=StackSettings(home=tmp_path / "home", jvm_lib=tmp_path / "jvm"),
        lake=LakeSettings(catalog_password="a\\b c"),
        _env_file=None,  # type: ignore[call-arg]
    )
    path = write_submit_properties(settings.spark_setup(), tmp_path / "out" / "k2.conf")
    assert path.stat().st_mode & 0o777 == 0o600
    lines = dict(
        line.split(" ", 1) for line in path.read_text().splitlines() if not line.startswith("#")
    )
    assert "spark.app.name" not in lines
    assert lines["spark.jars"].endswith("iceberg-spark-runtime-4.0_2.13-1.10.1.jar")
    assert lines["spark.driver.extraClassPath"] == lines["spark.jars"]
    assert lines["spark.sql.catalog.k2.jdbc.password"] == "a\\\\b c"


def test_secrets_never_reach_the_spark_command_line(tmp_path: Path) -> None:
    """Spark's launch settings (its JVM's command line) hold no key or password; the secret
    settings hold all of them."""
    lake = LakeSettings.model_validate(
        {**STORE.model_dump(), **KEYS, "catalog_user": "k2", "catalog_password": "pg-password"}
    )
    chosen = lake_settings(lake, tmp_path, "s3://k2-lake/checkpoints/stream").spark_setup()
    public = session_conf(chosen, "k2-test")
    text = repr(public)
    for secret in ("s3cr3t-value", "AKIDK2", "pg-password"):
        assert secret not in text
    hidden = secret_conf(chosen)
    assert hidden["spark.sql.catalog.k2.jdbc.password"] == "pg-password"
    assert hidden["spark.sql.catalog.k2.s3.secret-access-key"] == "s3cr3t-value"
    assert hidden["spark.hadoop.fs.s3a.secret.key"] == "s3cr3t-value"
    assert public["spark.sql.catalog.k2.io-impl"] == "org.apache.iceberg.io.ResolvingFileIO"
