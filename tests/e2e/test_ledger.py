"""Simulator → ingest → Kafka → every layer, with faults all the way, compared with the ledger.

The simulator drops connections, garbles and duplicates frames; the Binance ingest is killed
with SIGKILL and restarted; the streaming job is killed with SIGKILL between its Bronze and its
Silver/Gold commits of a micro-batch, its checkpoint deleted, and restarted; invalid trades are
put on the raw topic by a misbehaving producer. At the end every trade of the ledger is in
``gold.trades`` exactly once with every value equal, every id an exchange made between a symbol's
first and last ledger trade is there (the ones no client was sent come from REST backfill), each
garbled frame is in the DLQ, each invalid trade in ``silver.quarantine`` with its reason, and
every 1-minute bar equals the bar computed here from the trades.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from k2.config import Settings
from k2.stack.manager import stack_environment
from tests.e2e.ledger_run import LedgerRun

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(1500)]

PER_SYMBOL = 450
WAIT_S = 420.0


def test_every_ledger_trade_reaches_gold_once_through_every_fault(
    settings: Settings, stack: Any, tmp_path: Path
) -> None:
    """Through disconnects, garbled and doubled frames, a killed ingest and a driver killed
    between commits without its checkpoint, Gold holds each ledger trade once, exactly."""
    home = tmp_path / "home"
    home.mkdir()
    run = LedgerRun(stack_environment(settings.stack), home, "test.ledger.", PER_SYMBOL, WAIT_S)
    with run.running_parts():
        run.start_all()
        # The Binance ingest is killed once a third of its trades are in Bronze, and restarted.
        third = 2 * PER_SYMBOL // 3
        run.poll(lambda: run.rows("bronze.binance_trades") >= third, "a third in Bronze")
        run.kill("ingest-binance")
        time.sleep(2)
        run.start_ingest("binance")
        run.inject_invalid()

        # The streaming job is killed between its Bronze and Silver commits, and loses its
        # checkpoint before it comes back.
        run.poll(run.between_commits, "a micro-batch caught between its commits", every_s=0.02)
        run.kill("stream")
        shutil.rmtree(home / "checkpoints")
        run.start("stream", "job", "stream")

        expected = run.wait_for_every_trade()
        codes = run.stop_all()
    assert all(code == 0 for code in codes.values()), codes
    assert '"event": "stream_resumed_from_table"' in (home / "stream.log").read_text()
    run.assert_ledger_in_gold(expected)
