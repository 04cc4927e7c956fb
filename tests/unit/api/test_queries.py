"""A trades page stops at its limit and knows where the next one starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from k2.api.queries import SEQ_COLUMN, Page, TradeKey, hours_of

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def batch(first: int, count: int) -> pa.RecordBatch:
    ids = list(range(first, first + count))
    return pa.record_batch(
        [
            pa.array([f"m{i}" for i in ids]),
            pa.array([T0 + timedelta(seconds=i) for i in ids], pa.timestamp("us", tz="UTC")),
            pa.array(ids, pa.int64()),
        ],
        names=["message_id", "exchange_ts", SEQ_COLUMN],
    )


def test_page_ends_at_its_limit_with_the_next_key() -> None:
    """With a look-ahead row the page holds exactly `limit` rows and names its last one."""
    page = Page(iter([batch(0, 3), batch(3, 0), batch(3, 4)]), limit=5)
    rows = [r for b in page for r in b.to_pylist()]
    assert [r["message_id"] for r in rows] == ["m0", "m1", "m2", "m3", "m4"]
    assert all(SEQ_COLUMN not in r for r in rows)
    assert page.next_key == TradeKey(1714521600_000000 + 4_000_000, 4, "m4")


def test_last_page_has_no_next_key() -> None:
    """When the result holds no more than `limit` rows there is no next page."""
    page = Page(iter([batch(0, 5)]), limit=5)
    assert sum(b.num_rows for b in page) == 5 and page.next_key is None
    exact = Page(iter([batch(0, 5), batch(5, 1)]), limit=5)
    assert sum(b.num_rows for b in exact) == 5 and exact.next_key == TradeKey(
        1714521600_000000 + 4_000_000, 4, "m4"
    )


def test_hours_cover_the_window_from_its_first_hour() -> None:
    """Hours start at the hour of `start` and stop before `end`."""
    start = T0 + timedelta(minutes=30)
    assert hours_of((start, T0 + timedelta(hours=2))) == [T0, T0 + timedelta(hours=1)]
