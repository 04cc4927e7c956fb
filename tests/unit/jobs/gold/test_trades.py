"""The time ranges Gold's duplicate lookup reads."""

from __future__ import annotations

from k2.jobs.gold.trades import joined, spans


def test_overlapping_and_adjoining_ranges_are_read_as_one() -> None:
    """Ranges that overlap or touch are read as one range, separate ones stay apart, and the
    same range given twice is read once."""
    assert joined([(50, 60), (0, 10), (10, 20), (15, 30), (0, 10), (31, 40)]) == [
        (0, 30),
        (31, 40),
        (50, 60),
    ]
    assert joined([]) == []


def test_a_run_of_minutes_is_one_range() -> None:
    """Consecutive minutes become one range, a minute apart from them another."""
    minute = 60_000_000
    assert spans([0, minute, 2 * minute, 5 * minute], minute) == [
        (0, 3 * minute),
        (5 * minute, 6 * minute),
    ]
