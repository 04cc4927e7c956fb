"""The streaming job's listener: how far each partition is behind the newest offset."""

from __future__ import annotations

import json

from k2.jobs.listener import offset_lag


def test_offset_lag_is_latest_minus_end_per_partition() -> None:
    """The streaming job's lag per partition is the newest offset minus the last one read, and
    nothing before the first batch."""
    latest = json.dumps({"t": {"0": 100, "1": 50}})
    end = json.dumps({"t": {"0": 90, "1": 50}})
    assert offset_lag(latest, end) == {"t": {0: 10, 1: 0}}
    assert offset_lag(None, end) == {}
