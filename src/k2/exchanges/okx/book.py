"""OKX v5's L2 book (``books``, 400 levels) and its two checks: the CRC32 and the sequence ids.

The rule (docs/book-protocols.md, OKX):

- Checksum: the CRC32, read as a signed 32-bit integer, of the best 25 bids and 25 asks taken
  alternately, ``bid:ask:bid:ask...``, each level as ``price:size`` exactly as sent, joined by
  ``:``; when one side has fewer than 25 levels the other side's levels follow on their own.
  OKX has announced that the ``checksum`` field will be sent as 0 and then dropped, in favour of
  the sequence ids, so a checksum of 0 (or none) is not compared.
- Sequence: each message carries ``seqId`` and the ``prevSeqId`` of the message before it. A
  snapshot has ``prevSeqId`` -1. An update follows when its ``prevSeqId`` is the book's
  ``seqId``; this covers the keep-alive update with no levels (``prevSeqId == seqId``) and the
  reset after maintenance (``seqId`` below ``prevSeqId``). Anything else is a gap.

The snapshot comes on the subscription, or (OKX's announced procedure once the subscription
stops sending one) from ``GET /api/v5/market/books``, read with :func:`read_rest_snapshot`.
Either way, updates that arrive before it are buffered, and once it is applied those with a
``seqId`` at or below the snapshot's are dropped and the first one kept must bridge it
(``prevSeqId <= snapshot seqId < seqId``). A message is verified when everything it carries
checks; one with neither a checksum nor sequence ids cannot be, and is unverified.
"""

from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass

from k2.errors import MalformedFrameError
from k2.exchanges.base import LONG_MAX, LONG_MIN, Envelope, ParsedFrame
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
from k2.exchanges.okx.parse import PONG_FRAME, read_message
from k2.exchanges.okx.wire import BOOKS, BOOKS_PATH, PONG
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS, parse_with, reject

CHANNEL = BOOKS
CHECKSUM_LEVELS = 25
SNAPSHOT_PATH = BOOKS_PATH
BUFFER_LIMIT = 10_000  # updates held while waiting for a snapshot; the oldest go first
_LEVEL = range(2, 5)  # [price, size, "0" (deprecated), number of orders]


@dataclass(frozen=True, slots=True)
class OkxBookMessage:
    """One ``books`` push (or REST snapshot) of one instrument."""

    symbol: str  # instId
    snapshot: bool
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    checksum: int | None  # None when absent; 0 is OKX's "no checksum"
    seq_id: int | None
    prev_seq_id: int | None
    ts: str


def checksum_text(bids: list[Level], asks: list[Level]) -> str:
    """The text OKX's checksum is taken over: ``bid:ask:bid:ask...`` of the best 25 levels of
    each side (best first), each level ``price:size`` as sent."""
    parts: list[str] = []
    for index in range(CHECKSUM_LEVELS):
        if index < len(bids):
            parts += (bids[index].price_text, bids[index].size_text)
        if index < len(asks):
            parts += (asks[index].price_text, asks[index].size_text)
    return ":".join(parts)


def checksum(bids: list[Level], asks: list[Level]) -> int:
    """OKX's checksum of the best levels: the CRC32 of :func:`checksum_text`, signed."""
    value = zlib.crc32(checksum_text(bids, asks).encode("ascii"))
    return value - 2**32 if value >= 2**31 else value


class OkxBook(SyncedBook):
    """One instrument's book, verified by checksum and sequence ids after every message."""

    def __init__(self, symbol: str, buffer_limit: int = BUFFER_LIMIT) -> None:
        super().__init__(symbol)
        self.seq_id: int | None = None
        self._bridging = False  # the next update may bridge the snapshot instead of following it
        self.buffer: deque[OkxBookMessage] = deque(maxlen=buffer_limit)

    def apply(self, message: OkxBookMessage) -> list[Verdict]:
        """Apply one message: one verdict for an update, and for a snapshot its own verdict
        followed by one for each buffered update it decides."""
        if message.snapshot:
            return self._snapshot(message)
        if not self.synced:
            self.buffer.append(message)
            return [Verdict(Outcome.BUFFERED, sequence=message.seq_id)]
        return [self._update(message)]

    def _snapshot(self, message: OkxBookMessage) -> list[Verdict]:
        self.book.replace(message.bids, message.asks)
        self.has_snapshot = True
        self.seq_id = snap = message.seq_id
        pending = list(self.buffer)
        self.buffer.clear()
        decided = []
        while pending and (snap is None or _older(pending[0], snap)):
            decided.append(Verdict(Outcome.IGNORED, sequence=pending.pop(0).seq_id))
        first = pending[0].prev_seq_id if pending else None
        if snap is not None and first is not None and first > snap:
            self.buffer.extend(pending)
            self.synced = False
            too_old = Verdict(
                Outcome.UNVERIFIED, Reason.SNAPSHOT_TOO_OLD, snap, expected=snap, received=first
            )
            return [too_old, *decided]
        self.start_sync()
        self._bridging = True
        verdict = self._check(message, sequence_checked=snap is not None)
        return [verdict, *decided, *(self.apply(update)[0] for update in pending)]

    def _update(self, message: OkxBookMessage) -> Verdict:
        local, prev, seq = self.seq_id, message.prev_seq_id, message.seq_id
        bridging, self._bridging = self._bridging, False
        sequenced = local is not None and prev is not None and seq is not None
        if sequenced:
            assert local is not None and prev is not None and seq is not None
            bridges = bridging and prev <= local < seq
            if prev != local and not bridges:
                if prev <= seq <= local:
                    return Verdict(Outcome.IGNORED, sequence=seq)
                verdict = self.break_sync(
                    Reason.SEQUENCE_GAP, sequence=seq, expected=local, received=prev
                )
                self.buffer.append(message)  # the next snapshot may still need it
                return verdict
            self.seq_id = seq
        self.book.update(message.bids, message.asks)
        return self._check(message, sequence_checked=sequenced)

    def _check(self, message: OkxBookMessage, *, sequence_checked: bool) -> Verdict:
        expected = message.checksum
        if expected:  # 0: OKX no longer sends a checksum
            computed = checksum(*self.book.top(CHECKSUM_LEVELS))
            if computed != expected:
                return self.break_sync(
                    Reason.CHECKSUM_MISMATCH,
                    sequence=message.seq_id,
                    expected=expected,
                    received=computed,
                )
        elif not sequence_checked and not message.snapshot:
            return self.break_sync(Reason.UNCHECKABLE, sequence=message.seq_id)
        return self.verified(message.seq_id)


def _older(update: OkxBookMessage, snap: int) -> bool:
    """True when the snapshot already holds ``update`` (ids in their normal order, at or below
    the snapshot's); an update without ids cannot be placed and is dropped too."""
    seq, prev = update.seq_id, update.prev_seq_id
    return seq is None or prev is None or prev <= seq <= snap


class OkxBooks(Books[OkxBook]):
    """Every instrument's book on one connection."""

    def __init__(self, buffer_limit: int = BUFFER_LIMIT) -> None:
        super().__init__(lambda inst_id: OkxBook(inst_id, buffer_limit))

    def apply(self, read: OkxBookMessage | BookMalformed) -> tuple[str | None, list[Verdict]]:
        """Apply what :func:`read_push` read: the instrument and the verdicts."""
        if isinstance(read, BookMalformed):
            symbol, verdict = self.malformed(read)
            return symbol, [verdict]
        return read.symbol, self.book(read.symbol).apply(read)


def parse_book_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """One frame of a book feed: its ``books`` push, or what any other frame holds (events,
    ``pong``) as the trade parser reads it."""
    if text == PONG:
        return PONG_FRAME
    parsed = parse_with(text, envelope, max_chars, None, _book_or_other)
    return with_dead_letter(parsed, text, envelope, max_chars)


def _book_or_other(data: object, envelope: Envelope) -> ParsedFrame:
    if isinstance(data, dict) and "data" in data:
        argument = data.get("arg")
        if isinstance(argument, dict) and argument.get("channel") == CHANNEL:
            return ParsedFrame(books=(read_push(data),))
    return read_message(data, envelope)


def read_push(data: object) -> OkxBookMessage | BookMalformed:
    """A ``books`` push (``{"arg": {...}, "action": ..., "data": [{...}]}``), or why not."""
    inst_id = None
    if isinstance(data, dict) and isinstance(data.get("arg"), dict):
        found = data["arg"].get("instId")
        inst_id = found if isinstance(found, str) else None
    try:
        if not isinstance(data, dict) or not isinstance(data.get("arg"), dict):
            reject("not a push")
        if data["arg"].get("channel") != CHANNEL or inst_id is None:
            reject("not a books push of one instrument")
        action = data.get("action")
        if action not in ("snapshot", "update"):
            reject(f"books action {action!r} is neither snapshot nor update")
        return _row(inst_id, action == "snapshot", data.get("data"))
    except MalformedFrameError as exc:
        return BookMalformed(str(exc), inst_id)


def read_rest_snapshot(inst_id: str, data: object) -> OkxBookMessage | BookMalformed:
    """A ``GET /api/v5/market/books`` body (``{"code": "0", "data": [{...}]}``), or why not."""
    try:
        if not isinstance(data, dict) or data.get("code") != "0":
            reject("order book response is not a success")
        return _row(inst_id, True, data.get("data"))
    except MalformedFrameError as exc:
        return BookMalformed(str(exc), inst_id)


def _row(inst_id: str, snapshot: bool, rows: object) -> OkxBookMessage:
    if not isinstance(rows, list) or len(rows) != 1 or not isinstance(rows[0], dict):
        reject("books data is not one object")
    row = rows[0]
    ts = row.get("ts")
    if not isinstance(ts, str):
        reject("books data without ts")
    bids = read_levels(row.get("bids"), "books bids", _LEVEL)
    asks = read_levels(row.get("asks"), "books asks", _LEVEL)
    seq, prev = _optional_id(row, "seqId"), _optional_id(row, "prevSeqId")
    return OkxBookMessage(inst_id, snapshot, bids, asks, _checksum(row), seq, prev, ts)


def _checksum(row: dict[str, object]) -> int | None:
    value = row.get("checksum")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
        reject(f"books checksum {value!r} is not a signed 32-bit integer")
    return value


def _optional_id(row: dict[str, object], name: str) -> int | None:
    value = row.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not LONG_MIN <= value <= LONG_MAX:
        reject(f"books {name} {value!r} is not a 64-bit integer")
    return value
