"""Bronze's Kafka offsets in its own table: markers that only move forward, found behind a
compaction or under their old name, and a start for every partition."""

from __future__ import annotations

import json

from k2.jobs.offsets import (
    MARKER,
    PREVIOUS,
    TableProgress,
    marker_offsets,
    marker_value,
    merged,
    parse_marker,
    starting_offsets,
)


def test_markers_only_move_forward_and_round_trip() -> None:
    """The Kafka offsets a table records only ever move forward, per partition, and read back
    exactly as written."""
    assert merged({"t": {0: 10, 1: 5}}, {"t": {0: 7, 2: 3}, "u": {0: 1}}) == {
        "t": {0: 10, 1: 5, 2: 3},
        "u": {0: 1},
    }
    value = marker_value({"t": {1: 5, 0: 10}, "u": {0: 2}})
    assert json.loads(value) == {"t": {"0": 10, "1": 5}, "u": {"0": 2}}
    assert parse_marker(value) == {"t": {0: 10, 1: 5}, "u": {0: 2}}


class _Snapshot:
    def __init__(self, snapshot_id: int, parent: int | None, props: dict[str, str]) -> None:
        self.snapshot_id = snapshot_id
        self.parent_snapshot_id = parent
        self.summary = type("S", (), {"additional_properties": props})()


class _Metadata:
    def __init__(self, current: int | None, snapshots: list[_Snapshot]) -> None:
        self.current_snapshot_id = current
        self._snapshots = {s.snapshot_id: s for s in snapshots}

    def snapshot_by_id(self, snapshot_id: int) -> _Snapshot | None:
        return self._snapshots.get(snapshot_id)


def test_the_marker_is_found_behind_a_compaction_snapshot() -> None:
    """The offsets a table records are found behind a compaction's snapshot, and a table whose
    recording snapshots expired has none."""
    snapshots = [
        _Snapshot(1, None, {MARKER: marker_value({"t": {0: 4}})}),
        _Snapshot(
            2, 1, {MARKER: marker_value({"t": {0: 9}}), PREVIOUS: marker_value({"t": {0: 4}})}
        ),
        _Snapshot(3, 2, {}),  # rewrite_data_files
    ]
    table = type("T", (), {"metadata": _Metadata(3, snapshots)})()
    assert marker_offsets(table) == TableProgress(settled={"t": {0: 9}}, resume={"t": {0: 4}})
    expired = type("T", (), {"metadata": _Metadata(3, snapshots[2:])})()
    assert marker_offsets(expired) is None


def test_a_table_written_before_the_rename_keeps_its_marker() -> None:
    """A table written before the offsets property was renamed still resumes where it left off."""
    legacy = {"k2.bronze.offsets": marker_value({"t": {0: 9}})}
    table = type("T", (), {"metadata": _Metadata(1, [_Snapshot(1, None, legacy)])})()
    assert marker_offsets(table) == TableProgress(settled={"t": {0: 9}}, resume={"t": {0: 9}})


def test_starting_offsets_name_every_partition() -> None:
    """The stream resumes each partition one past the last offset the table holds, and reads a
    partition the table never saw from its start."""
    starts = json.loads(starting_offsets({"t": [0, 1, 2], "u": [0]}, {"t": {0: 9, 2: 0}}))
    assert starts == {"t": {"0": 10, "1": -2, "2": 1}, "u": {"0": -2}}
