"""Table maintenance steps as SQL: expiry and compaction from the retention settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from k2.config import MaintenanceSettings, Settings
from k2.errors import LakeError
from k2.lake.maintenance import step_sql


def test_maintenance_steps_use_the_retention_settings() -> None:
    """Expiry keeps the configured hours and snapshots, compaction targets 128 MB files, and an
    unknown step is refused by name."""
    settings = Settings(
        maintenance=MaintenanceSettings(snapshot_retention_hours=2, retain_last=3),
        _env_file=None,
    )
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    expire = step_sql("expire", "bronze.k_trades", settings.maintenance, now)
    assert "older_than => TIMESTAMP '2024-05-01 10:00:00.000000'" in expire
    assert "retain_last => 3" in expire
    compact = step_sql("compact", "bronze.k_trades", settings.maintenance, now)
    assert "'target-file-size-bytes', '134217728'" in compact
    with pytest.raises(LakeError, match="unknown maintenance step"):
        step_sql("vacuum", "bronze.k_trades", settings.maintenance, now)
