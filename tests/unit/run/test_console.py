"""The console of `k2 run`: each part's new log lines copied, warnings made one-line notices."""

from __future__ import annotations

import io
import json
from pathlib import Path

from k2.run.console import LogCopier, notice_of


def test_the_console_copies_new_log_lines_and_picks_out_warnings(tmp_path: Path) -> None:
    """Off a terminal each part's new lines are copied; warnings become one-line notices."""

    class Part:
        name = "ingest-binance"
        log = tmp_path / "ingest-binance.log"
        metrics_url = None
        pid = 1

        def exit_code(self) -> int | None:
            return None

    Part.log.write_text('{"event": "old"}\n')
    out = io.StringIO()
    copier = LogCopier(out)
    copier.watch([Part()])
    with Part.log.open("a") as log:
        log.write('{"event": "ws_connected", "level": "info"}\n{"event": "half')
    copier.watch([Part()])
    assert out.getvalue() == '{"event": "ws_connected", "level": "info"}\n'
    warning = json.dumps(
        {
            "event": "ingest_gap_unfilled",
            "level": "warning",
            "timestamp": "2026-01-01T10:00:00Z",
            "symbol": "BTCUSDT",
        }
    )
    assert notice_of("ingest-binance", warning) == (
        "10:00:00 ingest-binance WARNING ingest_gap_unfilled symbol=BTCUSDT"
    )
    assert notice_of("ingest-binance", '{"event": "x", "level": "info"}') is None
