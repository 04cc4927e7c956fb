"""What a request says, read strictly: times, time travel, pagination cursors, output format.

Each reader raises :class:`~k2.errors.ApiRequestError` with the status the API answers (422 for
a value that cannot be read, 400 for one that breaks a limit) and a message naming the parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from k2.api.queries import TradeKey
from k2.domain import datetime_from_micros, micros_from_datetime
from k2.errors import ApiRequestError
from k2.lake.export import FORMATS, MEDIA_TYPES, Format

_MIN = datetime(1970, 1, 1, tzinfo=UTC)
_MAX = datetime(9999, 1, 1, tzinfo=UTC)


def parse_time(name: str, text: str | None) -> datetime | None:
    """An RFC 3339 / ISO 8601 time (``Z`` or an offset; none means UTC), as aware UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ApiRequestError(
            422, f"{name}={text!r} is not a time; use RFC 3339, e.g. 2024-05-01T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ApiRequestError(422, f"{name}={text!r} is out of range") from None
    if not _MIN <= moment < _MAX:
        raise ApiRequestError(422, f"{name}={text!r} is out of range (1970..9999)")
    return moment


def parse_window(
    start: str | None, end: str | None, default: timedelta, limit: timedelta, what: str
) -> tuple[datetime, datetime]:
    """``[start, end)``: end defaults to now, start to ``end - default``; at most ``limit``."""
    stop = parse_time("end", end) or datetime.now(UTC)
    begin = parse_time("start", start) or max(_MIN, stop - default)
    if begin >= stop:
        raise ApiRequestError(422, f"start ({begin.isoformat()}) must be before end")
    if stop - begin > limit:
        hours = limit.total_seconds() / 3600
        raise ApiRequestError(
            400, f"{what} span at most {hours:g} hours per request; narrow start..end"
        )
    return begin, stop


def parse_as_of(text: str | None) -> int | datetime | None:
    """``as_of``: an Iceberg snapshot id (digits) or a time."""
    if text is None:
        return None
    if text.strip().isdigit():
        value = int(text)
        if value >= 2**63:
            raise ApiRequestError(422, f"as_of={text!r} is not a snapshot id")
        return value
    return parse_time("as_of", text)


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts, bound to the query and snapshot it came from."""

    snapshot_id: int | None
    series: tuple[str, str]
    window: tuple[datetime, datetime]
    after: TradeKey

    def encode(self) -> str:
        data = {
            "v": 1,
            "s": self.snapshot_id,
            "e": self.series[0],
            "y": self.series[1],
            "a": micros_from_datetime(self.window[0]),
            "b": micros_from_datetime(self.window[1]),
            "t": self.after.exchange_ts_us,
            "q": self.after.seq,
            "m": self.after.message_id,
        }
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _require(condition: bool) -> None:
    if not condition:
        raise ValueError("malformed cursor")


def decode_cursor(text: str) -> Cursor:
    """The cursor a previous page returned; 400 when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data: dict[str, Any] = json.loads(raw)
        _require(data["v"] == 1)
        snapshot = data["s"]
        _require(snapshot is None or (isinstance(snapshot, int) and 0 <= snapshot < 2**63))
        values = (data["a"], data["b"], data["t"], data["q"])
        _require(all(isinstance(v, int) and not isinstance(v, bool) for v in values))
        _require(all(isinstance(data[k], str) for k in ("e", "y", "m")))
        window = (datetime_from_micros(data["a"]), datetime_from_micros(data["b"]))
        after = TradeKey(data["t"], data["q"], data["m"])
        datetime_from_micros(after.exchange_ts_us)
        _require(-(2**63) <= after.seq < 2**63)
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error):
        raise ApiRequestError(
            400, "cursor is not one this API returned; start again without cursor"
        ) from None
    return Cursor(snapshot, (data["e"], data["y"]), window, after)


def encode_until(key: TradeKey) -> str:
    """The ``until`` token of a trade's place in the order (opaque to clients)."""
    raw = json.dumps([key.exchange_ts_us, key.seq, key.message_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_until(text: str) -> TradeKey:
    """The trade key of an ``until`` token the live stream gave; 400 when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        ts_us, seq, message_id = json.loads(raw)
        _require(isinstance(ts_us, int) and isinstance(seq, int) and isinstance(message_id, str))
        _require(not isinstance(ts_us, bool) and not isinstance(seq, bool))
        _require(-(2**63) <= seq < 2**63)
        datetime_from_micros(ts_us)
    except (ValueError, TypeError, OverflowError, binascii.Error):
        raise ApiRequestError(400, "until is not a token the live stream gave") from None
    return TradeKey(ts_us, seq, message_id)


def output_format(fmt: str | None, accept: str | None) -> Format:
    """``format=`` if given, else the first type of ``Accept`` the API serves, else JSON."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ApiRequestError(422, f"format={fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt  # type: ignore[return-value]
    by_type = {media.split(";")[0]: name for name, media in MEDIA_TYPES.items()}
    by_type["application/x-parquet"] = "parquet"
    by_type["application/vnd.apache.arrow.file"] = "arrow"
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in by_type:
            return by_type[media]
    return "json"
