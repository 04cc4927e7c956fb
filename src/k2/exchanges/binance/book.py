"""Binance spot's L2 book: the diff depth stream (``<symbol>@depth@100ms``) on a REST snapshot.

The rule (docs/book-protocols.md, Binance) is Binance's own procedure: events arriving before the
snapshot (``GET /api/v3/depth``) are buffered; the snapshot replaces the book and its
``lastUpdateId`` becomes the book's update id; then each event, buffered or live, is

- ignored when its final id ``u`` is at or below the book's id (the snapshot holds it already);
- a gap when its first id ``U`` is above the book's id + 1: updates were missed, the book is
  unverified and waits for a new snapshot (the events after it are buffered again);
- otherwise applied (quantities are absolute; 0 removes a level, even one the book lacks), and
  ``u`` becomes the book's id. In a gap-free stream each ``U`` is the previous ``u`` + 1; the
  first event after a snapshot bridges it (``U <= lastUpdateId + 1 <= u``).

A snapshot older than the first event it has to bridge (the first kept event starts above
``lastUpdateId + 1``) is refused as :attr:`Reason.SNAPSHOT_TOO_OLD`; the buffer is kept for the
next snapshot. The readers take decoded JSON and never raise.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from k2.errors import MalformedFrameError
from k2.exchanges.base import LONG_MAX, Envelope, ParsedFrame
from k2.exchanges.binance.parse import read_message
from k2.exchanges.binance.wire import DEPTH_EVENT, DEPTH_LIMITS, DEPTH_PATH
from k2.exchanges.book import Level
from k2.exchanges.booksync import (
    BookMalformed,
    Books,
    Outcome,
    Reason,
    SyncedBook,
    Verdict,
    read_levels,
    with_dead_letter,
)
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS, parse_with, reject

SNAPSHOT_LIMIT = DEPTH_LIMITS[1]  # levels a side the REST snapshot returns at most
SNAPSHOT_PATH = DEPTH_PATH
BUFFER_LIMIT = 10_000  # events held while waiting for a snapshot; the oldest go first
_LEVEL = (2, 3)  # [price, quantity]; old payloads carried a third, ignored element


@dataclass(frozen=True, slots=True)
class DepthUpdate:
    """One diff depth event: the update ids it spans and its level changes."""

    symbol: str
    first_id: int  # U
    last_id: int  # u
    event_time: int  # E, in the connection's timeUnit
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """A REST depth snapshot (its symbol is the one the request named)."""

    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


class BinanceBook(SyncedBook):
    """One symbol's book on the diff depth stream, verified by update id continuity."""

    def __init__(self, symbol: str, buffer_limit: int = BUFFER_LIMIT) -> None:
        super().__init__(symbol)
        self.update_id: int | None = None  # the id of the last update the book holds
        self.buffer: deque[DepthUpdate] = deque(maxlen=buffer_limit)

    def apply(self, event: DepthUpdate) -> Verdict:
        """Apply (or buffer, or ignore) one event."""
        if not self.synced or self.update_id is None:
            self.buffer.append(event)
            return Verdict(Outcome.BUFFERED, sequence=event.last_id)
        if event.last_id <= self.update_id:
            return Verdict(Outcome.IGNORED, sequence=event.last_id)
        if event.first_id > self.update_id + 1:
            verdict = self.break_sync(
                Reason.SEQUENCE_GAP,
                sequence=event.last_id,
                expected=self.update_id + 1,
                received=event.first_id,
            )
            self.buffer.append(event)  # the next snapshot may still need it
            return verdict
        self.book.update(event.bids, event.asks)
        self.update_id = event.last_id
        return self.verified(event.last_id)

    def apply_snapshot(self, snapshot: DepthSnapshot) -> list[Verdict]:
        """Apply a REST snapshot, then the buffered events it can place.

        The first verdict is the snapshot's; one follows for each buffered event decided now
        (ignored as older than the snapshot, or applied). A snapshot too old for the buffer is
        applied but leaves the book unverified, and the undecided events stay buffered.
        """
        self.book.replace(snapshot.bids, snapshot.asks)
        self.update_id = last = snapshot.last_update_id
        self.has_snapshot = True
        pending = list(self.buffer)
        self.buffer.clear()
        ignored = []
        while pending and pending[0].last_id <= last:
            ignored.append(Verdict(Outcome.IGNORED, sequence=pending.pop(0).last_id))
        if pending and pending[0].first_id > last + 1:
            self.buffer.extend(pending)
            self.synced = False
            too_old = Verdict(
                Outcome.UNVERIFIED,
                Reason.SNAPSHOT_TOO_OLD,
                sequence=last,
                expected=last + 1,
                received=pending[0].first_id,
            )
            return [too_old, *ignored]
        self.start_sync()
        return [self.verified(last), *ignored, *(self.apply(event) for event in pending)]


class BinanceBooks(Books[BinanceBook]):
    """Every symbol's book on one connection's diff depth streams."""

    def __init__(self, buffer_limit: int = BUFFER_LIMIT) -> None:
        super().__init__(lambda symbol: BinanceBook(symbol, buffer_limit))

    def apply(self, read: DepthUpdate | BookMalformed) -> tuple[str | None, Verdict]:
        """Apply what :func:`read_update` read: the symbol and the verdict."""
        if isinstance(read, BookMalformed):
            return self.malformed(read)
        return read.symbol, self.book(read.symbol).apply(read)


def parse_book_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """One frame of a book feed: its diff depth event, or what any other frame holds
    (responses, errors) as the trade parser reads it."""
    parsed = parse_with(text, envelope, max_chars, None, _book_or_other)
    return with_dead_letter(parsed, text, envelope, max_chars)


def _book_or_other(data: object, envelope: Envelope) -> ParsedFrame:
    payload = data.get("data") if isinstance(data, dict) and "stream" in data else data
    if isinstance(payload, dict) and payload.get("e") == DEPTH_EVENT:
        return ParsedFrame(books=(read_update(data),))
    return read_message(data, envelope)


def read_update(data: object) -> DepthUpdate | BookMalformed:
    """A diff depth event, raw or in a combined stream's ``{"stream", "data"}``, or why not."""
    if isinstance(data, dict) and "stream" in data and "data" in data:
        data = data["data"]
    try:
        return _update(data)
    except MalformedFrameError as exc:
        symbol = data.get("s") if isinstance(data, dict) else None
        return BookMalformed(str(exc), symbol if isinstance(symbol, str) else None)


def _update(data: object) -> DepthUpdate:
    if not isinstance(data, dict) or data.get("e") != DEPTH_EVENT:
        reject("not a depthUpdate event")
    symbol = data.get("s")
    if not isinstance(symbol, str):
        reject("depthUpdate without a symbol")
    first, last, event_time = _id(data, "U"), _id(data, "u"), _id(data, "E")
    if first > last:
        reject(f"depthUpdate first update id {first} is above its final id {last}")
    bids = read_levels(data.get("b"), "depthUpdate b", _LEVEL)
    asks = read_levels(data.get("a"), "depthUpdate a", _LEVEL)
    return DepthUpdate(symbol, first, last, event_time, bids, asks)


def read_snapshot(data: object) -> DepthSnapshot | BookMalformed:
    """A ``GET /api/v3/depth`` body, or why not."""
    try:
        if not isinstance(data, dict):
            reject("depth snapshot is not an object")
        last = _id(data, "lastUpdateId")
        bids = read_levels(data.get("bids"), "depth bids", _LEVEL)
        return DepthSnapshot(last, bids, read_levels(data.get("asks"), "depth asks", _LEVEL))
    except MalformedFrameError as exc:
        return BookMalformed(str(exc))


def _id(data: dict[str, object], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= LONG_MAX:
        reject(f"{name} {value!r} is not a non-negative 64-bit integer")
    return value
