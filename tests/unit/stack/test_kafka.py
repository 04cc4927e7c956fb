"""The Kafka node's configuration: the embedded broker alone, and a voter of the cluster."""

from __future__ import annotations

from pathlib import Path

from k2.config import StackSettings
from k2.stack.cluster import LocalCluster
from k2.stack.kafka import KafkaBroker


def _config(broker: KafkaBroker) -> dict[str, str]:
    lines = broker._write_config().read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_embedded_broker_is_a_quorum_of_one_with_unreplicated_internal_topics(
    tmp_path: Path,
) -> None:
    """The embedded broker is node 1 alone, its internal topics on one replica, no cluster
    defaults added."""
    stack = StackSettings(home=tmp_path, kafka_port=9092, kafka_controller_port=9093)
    config = _config(KafkaBroker(stack))
    assert config["node.id"] == "1"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert config["offsets.topic.replication.factor"] == "1"
    assert config["transaction.state.log.min.isr"] == "1"
    assert "min.insync.replicas" not in config
    assert "default.replication.factor" not in config
    assert config["log.dirs"] == str(tmp_path / "kafka" / "data")


def test_cluster_voters_share_one_quorum_and_replicate_internal_topics(tmp_path: Path) -> None:
    """Each of the cluster's three nodes votes in one quorum of three, replicates internal
    topics three times with two in sync, and makes min.insync.replicas=2 the default."""
    cluster = LocalCluster(StackSettings(home=tmp_path))
    configs = [_config(broker) for broker in cluster.brokers]
    assert [c["node.id"] for c in configs] == ["1", "2", "3"]
    assert len({c["controller.quorum.voters"] for c in configs}) == 1
    assert configs[0]["controller.quorum.voters"].count("@127.0.0.1:") == 3
    for config in configs:
        assert config["offsets.topic.replication.factor"] == "3"
        assert config["transaction.state.log.replication.factor"] == "3"
        assert config["transaction.state.log.min.isr"] == "2"
        assert config["min.insync.replicas"] == "2"
        assert config["default.replication.factor"] == "3"
