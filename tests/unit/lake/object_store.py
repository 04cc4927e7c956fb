"""An S3-compatible lake as the unit tests configure it: one store, its keys, and settings that
point every engine at it."""

from __future__ import annotations

from pathlib import Path

from k2.config import LakeSettings, Settings, StackSettings, StreamSettings

KEYS = {"s3_access_key_id": "AKIDK2", "s3_secret_access_key": "s3cr3t-value"}
STORE = LakeSettings(
    warehouse="s3://k2-lake/warehouse",
    s3_endpoint="http://127.0.0.1:8333",
    s3_path_style_access=True,
    **KEYS,  # type: ignore[arg-type]
)


def lake_settings(lake: LakeSettings, tmp_path: Path, checkpoint: str | None = None) -> Settings:
    """Settings for ``lake``; the stack in ``tmp_path``, the Iceberg runtime in its JVM folder."""
    jvm = tmp_path / "jvm"
    (jvm / "spark").mkdir(parents=True, exist_ok=True)
    (jvm / "spark" / "iceberg-spark-runtime-4.0_2.13-1.10.1.jar").touch()
    return Settings(
        stack=StackSettings(home=tmp_path, jvm_lib=jvm),
        lake=lake,
        stream=StreamSettings(checkpoint_dir=checkpoint),
        _env_file=None,  # type: ignore[call-arg]
    )
