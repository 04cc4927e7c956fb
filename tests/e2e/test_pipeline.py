"""``k2 run --source simulator`` (what ``make run SOURCE=simulator`` runs) as a real process:
simulator → ingest → Kafka → Bronze, then SIGTERM stops every part cleanly.

It runs on the session's stack and catalog (the stack is already up, so ``k2 run`` neither starts
nor stops it), with a topic prefix of its own so it shares no topic with other tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from k2.config import Settings
from k2.lake.catalog import open_catalog
from k2.stack.manager import Stack, stack_environment
from k2.stack.ports import free_port
from tests.polling import Pending, log_tail, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(420)]

TABLE = "bronze.binance_trades"


def _rows(settings: Settings) -> list[dict[str, Any]]:
    catalog = open_catalog(settings.lake_access())
    if not catalog.table_exists(TABLE):
        return []
    rows: list[dict[str, Any]] = catalog.load_table(TABLE).scan().to_arrow().to_pylist()
    return rows


def test_make_run_with_the_simulator_lands_trades_in_bronze_and_stops_cleanly(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """`k2 run --source simulator` lands the simulator's trades in Bronze, each offset once, stops
    every part cleanly on SIGTERM and leaves a stack it did not start running."""
    env = stack_environment(settings.stack)
    env.update(
        {
            "K2_EXCHANGES": '["binance"]',
            "K2_KAFKA__TOPIC_PREFIX": "test.pipeline.",
            "K2_INGEST__SIMULATOR_URL": f"http://127.0.0.1:{free_port()}",
            "K2_INGEST__METRICS_PORT": "0",
            "K2_STREAM__METRICS_PORT": "0",
            "K2_API__PORT": str(free_port()),
            "K2_STREAM__TRIGGER_INTERVAL_S": "1",
            "K2_SPARK__DRIVER_MEMORY": "1g",
            "K2_LOG_FORMAT": "json",
        }
    )
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "k2", "run", "--source", "simulator"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def landed() -> int | Pending:
            assert run.poll() is None, log.read_text()[-4000:]
            count = len(_rows(settings))
            return count if count >= 200 else Pending({"rows in Bronze": count})

        # The run starts a simulator, an ingest, Spark and the API, then a first batch lands.
        wait_until(landed, 240, "200 trades in Bronze", every_s=2, context=lambda: log_tail(log))
        run.send_signal(signal.SIGTERM)
        assert run.wait(300) == 0, log.read_text()[-4000:]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    stopped = {e["part"]: e["exit_code"] for e in events if e["event"] == "pipeline_part_stopped"}
    assert stopped == {"simulator": 0, "ingest-binance": 0, "stream": 0, "api": 0}
    rows = _rows(settings)
    assert all(r["kafka_topic"] == "test.pipeline.market.crypto.trades.binance.raw" for r in rows)
    assert all(r["protocol"] == "binance-trade" and r["price"] for r in rows)
    offsets = Counter((r["kafka_partition"], r["kafka_offset"]) for r in rows)
    assert max(offsets.values()) == 1  # each offset once
    assert stack.services[0].healthy()  # a stack it did not start is left running
