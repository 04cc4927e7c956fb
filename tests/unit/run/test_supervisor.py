"""The parts `k2 run` starts: in data-flow order, each on a known metrics port, the stream's JVM
logging to a file of its own."""

from __future__ import annotations

import json
from pathlib import Path

from k2.config import Settings
from k2.exchanges import EXCHANGES
from k2.run.supervisor import STOP_ORDER, plan_parts


def _settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, stack={"home": tmp_path})  # type: ignore[call-arg]


def test_parts_start_in_data_flow_order_on_known_ports(tmp_path: Path) -> None:
    """The simulator starts first and the API last, every part has a metrics port even when the
    setting is 0, and the stream's JVM logs to a file of its own."""
    settings = _settings(tmp_path).model_copy(
        update={"ingest": _settings(tmp_path).ingest.model_copy(update={"metrics_port": 0})}
    )
    parts = plan_parts(settings, "simulator", tmp_path, jvm_logs=False)
    names = [p.name for p in parts]
    ingests = [f"ingest-{name}" for name in EXCHANGES]
    assert names == ["simulator", *ingests, "stream", "api"]
    assert all(p.metrics_port for p in parts if p.stage != "simulator")
    assert "--metrics-port" in parts[1].args
    stream = next(p for p in parts if p.name == "stream")
    conf = json.loads(stream.env["K2_SPARK__CONF"])
    assert "log4j2.configurationFile" in conf["spark.driver.extraJavaOptions"]
    assert "stream-jvm.log" in (tmp_path / "log4j2-stream.properties").read_text()
    live = {p.name: p for p in plan_parts(settings, "live", tmp_path, True)}
    assert "K2_SPARK__CONF" not in live["stream"].env
    assert STOP_ORDER == ("api", "ingest", "stream", "simulator")
