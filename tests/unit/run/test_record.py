"""The run record of `k2 run`: written and read back, and a part alive only while its process is."""

from __future__ import annotations

import os
from pathlib import Path

from k2.run.record import PartRecord, RunRecord, read_run, start_time, write_run


def test_the_run_record_survives_a_round_trip_and_knows_dead_pids(tmp_path: Path) -> None:
    """A recorded part is alive only while its pid still has the recorded start time."""
    me = os.getpid()
    part = PartRecord("ingest-binance", "ingest", me, start_time(me), "/x.log", "http://a/metrics")
    gone = PartRecord("stream", "stream", me, start_time(me) - 100, "/y.log")
    write_run(tmp_path, RunRecord(me, start_time(me), "simulator", "abc", "/logs", (part, gone)))
    record = read_run(tmp_path)
    assert record is not None and record.parts == (part, gone)
    assert record.alive() and part.alive() and not gone.alive()
