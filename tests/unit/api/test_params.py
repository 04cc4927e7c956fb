"""Request values are read strictly: times, as_of, cursors, until tokens and formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k2.api.params import (
    Cursor,
    decode_cursor,
    decode_until,
    encode_until,
    output_format,
    parse_as_of,
    parse_time,
    parse_window,
)
from k2.api.queries import TradeKey
from k2.errors import ApiRequestError

WINDOW = (datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))


def test_times_with_z_offsets_or_none_are_utc() -> None:
    """Z, an offset and no offset all read as the same aware UTC instant."""
    want = datetime(2024, 5, 1, 12, 0, 0, 123456, UTC)
    for text in (
        "2024-05-01T12:00:00.123456Z",
        "2024-05-01T14:00:00.123456+02:00",
        "2024-05-01T12:00:00.123456",
    ):
        assert parse_time("start", text) == want


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "", "0001-01-01T00:00:00Z"])
def test_a_bad_time_is_422_naming_the_parameter(text: str) -> None:
    """A time that cannot be read or is out of range is refused with 422 naming it."""
    with pytest.raises(ApiRequestError) as refused:
        parse_time("end", text)
    assert refused.value.status == 422 and "end=" in str(refused.value)


def test_a_window_over_the_limit_is_400_saying_the_limit() -> None:
    """start..end longer than the limit is refused with 400 stating the limit."""
    with pytest.raises(ApiRequestError) as refused:
        parse_window(
            "2024-05-01T00:00:00Z",
            "2024-05-03T00:00:00Z",
            timedelta(hours=1),
            timedelta(hours=24),
            "trades requests",
        )
    assert refused.value.status == 400 and "24 hours" in str(refused.value)
    assert parse_window(
        None, "2024-05-01T01:00:00Z", timedelta(hours=1), timedelta(hours=24), "x"
    ) == (datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 1, 1, tzinfo=UTC))


def test_as_of_is_a_snapshot_id_or_a_time() -> None:
    """Digits are a snapshot id, anything else must be a time."""
    assert parse_as_of("8745212345678901234") == 8745212345678901234
    assert parse_as_of("2024-05-01T00:00:00Z") == datetime(2024, 5, 1, tzinfo=UTC)
    with pytest.raises(ApiRequestError):
        parse_as_of("99999999999999999999")


@given(
    snapshot=st.none() | st.integers(0, 2**63 - 1),
    ts=st.integers(0, 2**52),
    seq=st.integers(-(2**63), 2**63 - 1),
    message_id=st.text(max_size=40),
)
def test_cursor_round_trips(snapshot: int | None, ts: int, seq: int, message_id: str) -> None:
    """A cursor decodes to exactly what was encoded."""
    cursor = Cursor(snapshot, ("binance", "BTC/USDT"), WINDOW, TradeKey(ts, seq, message_id))
    assert decode_cursor(cursor.encode()) == cursor
    assert decode_until(encode_until(cursor.after)) == cursor.after


@given(st.text(max_size=60))
def test_any_other_cursor_text_is_a_400(text: str) -> None:
    """Text that is not a cursor this API made is refused with 400, never an exception."""
    try:
        decode_cursor(text)
    except ApiRequestError as exc:
        assert exc.status == 400
    try:
        decode_until(text)
    except ApiRequestError as exc:
        assert exc.status == 400


def test_format_by_parameter_then_accept_then_json() -> None:
    """format= wins, then the first Accept type served, else JSON."""
    assert output_format("csv", "application/vnd.apache.parquet") == "csv"
    assert output_format(None, "text/html, application/vnd.apache.arrow.stream;q=0.9") == "arrow"
    assert output_format(None, "*/*") == "json"
    with pytest.raises(ApiRequestError):
        output_format("xml", None)
