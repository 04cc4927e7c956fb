"""The local cluster's state file: ports and credentials kept once, privately."""

from __future__ import annotations

import json
from pathlib import Path

from k2.config import StackSettings
from k2.stack.cluster import LocalCluster


def _cluster(tmp_path: Path, **kwargs: int) -> LocalCluster:
    return LocalCluster(StackSettings(home=tmp_path / "home"), **kwargs)


def test_state_file_keeps_ports_and_credentials_privately(tmp_path: Path) -> None:
    """Ports and credentials saved once come back the same, in a 0600 file."""
    first = _cluster(tmp_path)
    first.state.save()
    assert first.state.path.stat().st_mode & 0o777 == 0o600
    second = _cluster(tmp_path)
    assert second.state.ports == first.state.ports
    assert second.environment("jdbc") == first.environment("jdbc")
    ports = list(first.state.ports.values())
    assert len(ports) == len(set(ports))
    saved = json.loads(first.state.path.read_text())
    assert saved["kafka_cluster_id"] == second.state.kafka_cluster_id
