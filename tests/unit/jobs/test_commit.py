"""A commit that lost a race is retried; one that failed otherwise, or landed anyway, is not."""

from __future__ import annotations

import pytest

from k2.jobs import commit


class _ConflictError(Exception):
    """Stands for Spark wrapping Iceberg's ValidationException (a lost race)."""

    def __str__(self) -> str:
        return "org.apache.iceberg.exceptions.ValidationException: Found conflicting files"


def test_a_lost_race_is_retried_until_the_commit_lands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two conflicts (a compaction committed first), then the commit goes through."""
    monkeypatch.setattr(commit.time, "sleep", lambda _: None)
    attempts: list[int] = []

    def write() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise _ConflictError
        return "committed"

    assert commit.with_commit_retries("gold.ohlcv_1m", write) == "committed"
    assert len(attempts) == 3


def test_a_failed_commit_that_landed_is_not_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the table shows the commit landed after all, the write is not made twice."""
    monkeypatch.setattr(commit.time, "sleep", lambda _: None)
    attempts: list[int] = []

    def write() -> str:
        attempts.append(1)
        raise _ConflictError

    assert commit.with_commit_retries("silver.x", write, landed=lambda: True) is None
    assert len(attempts) == 1


def test_any_other_failure_is_raised_at_once() -> None:
    """An error that is not a lost race is not retried."""
    attempts: list[int] = []

    def write() -> str:
        attempts.append(1)
        raise ValueError("disk full")

    with pytest.raises(ValueError, match="disk full"):
        commit.with_commit_retries("gold.trades", write)
    assert len(attempts) == 1


def test_a_race_lost_every_time_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the last attempt the conflict is raised, so the batch fails and is replayed."""
    monkeypatch.setattr(commit.time, "sleep", lambda _: None)

    def write() -> str:
        raise _ConflictError

    with pytest.raises(_ConflictError):
        commit.with_commit_retries("gold.trades", write)
