"""The local cluster before it runs: nothing written by looking at it, and a cluster of another
size never silently reopened."""

from __future__ import annotations

from pathlib import Path

import pytest

from k2.config import StackSettings
from k2.errors import ConfigError
from k2.stack.cluster import LocalCluster


def _cluster(tmp_path: Path, **kwargs: int) -> LocalCluster:
    return LocalCluster(StackSettings(home=tmp_path / "home"), **kwargs)


def test_nothing_is_written_before_up(tmp_path: Path) -> None:
    """Looking at a cluster (status, down) leaves no state file behind."""
    cluster = _cluster(tmp_path)
    assert not cluster.exists
    assert not (tmp_path / "home").exists()


def test_a_cluster_of_another_broker_count_is_refused(tmp_path: Path) -> None:
    """A cluster made with three brokers is not silently reopened as one of another size."""
    _cluster(tmp_path).state.save()
    with pytest.raises(ConfigError, match="has 3 Kafka brokers"):
        _cluster(tmp_path, brokers=1)
