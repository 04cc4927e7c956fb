"""Kraken's L2 book channel (WebSocket v1 and v2 ``book``) and its CRC32 check.

Both versions share one rule (docs/book-protocols.md, Kraken): apply every level of a message in
the order sent (size 0 removes a level), cut the book to the subscribed depth (Kraken sends no
removal for a level that falls out of it), then take the CRC32 of the top 10 asks, lowest
first, followed by the top 10 bids, highest first, each level written as its price then its
size with the decimal point and the leading zeros removed, and compare it with the message's
checksum as an unsigned 32-bit number. v1 sends the checksum (``"c"``, a string) on updates
only; v2 (``checksum``, an integer) also on the snapshot.

The checksum is over the text as sent, trailing zeros included, so each level keeps its text:
v1 prices and sizes are strings; v2 sends JSON numbers, which must be read with
:func:`k2.exchanges.parse.load_json` (numbers as :class:`~decimal.Decimal`) so that their exact
text (``0.00100000``) survives. The readers take the decoded JSON of one frame and never raise.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from decimal import Decimal

from k2.errors import MalformedFrameError, TradeInvalidError
from k2.exchanges.base import Envelope, ParsedFrame
from k2.exchanges.book import Level, read_level
from k2.exchanges.booksync import (
    BookMalformed,
    Books,
    Reason,
    SyncedBook,
    Verdict,
    read_levels,
    with_dead_letter,
)
from k2.exchanges.kraken.parse import decimal_text, read_v1_message, read_v2_message
from k2.exchanges.kraken.wire import V1_BOOK_PREFIX
from k2.exchanges.parse import DEFAULT_MAX_FRAME_CHARS, parse_with, reject
from k2.exchanges.values import rfc3339_micros

CHECKSUM_LEVELS = 10
DEPTHS = (10, 25, 100, 500, 1000)  # the depths a subscription may ask for; 10 by default
V1_CHANNEL_PREFIX = V1_BOOK_PREFIX
_CRC_MAX = 2**32 - 1
_V1_LEVEL = (3, 4)  # [price, volume, timestamp] and, on a republished level, a fourth value "r"


@dataclass(frozen=True, slots=True)
class KrakenBookMessage:
    """One ``book`` message of one pair: its levels in the order sent, and its checksum."""

    symbol: str
    snapshot: bool
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    checksum: int | None  # None on a v1 snapshot, which carries none
    depth: int | None = None  # v1 only: the subscribed depth, from the channel name
    exchange_us: int | None = None  # v2 only: the message's timestamp, µs since the epoch


def checksum_text(bids: list[Level], asks: list[Level]) -> str:
    """The text Kraken's checksum is taken over: the best 10 asks then the best 10 bids (best
    first), each level its price then its size without the decimal point and leading zeros."""
    parts = [_digits(level.price_text) + _digits(level.size_text) for level in asks[:10]]
    parts += [_digits(level.price_text) + _digits(level.size_text) for level in bids[:10]]
    return "".join(parts)


def checksum(bids: list[Level], asks: list[Level]) -> int:
    """Kraken's checksum of the best levels: the CRC32 of :func:`checksum_text`, unsigned."""
    return zlib.crc32(checksum_text(bids, asks).encode("ascii"))


def _digits(text: str) -> str:
    return text.replace(".", "").lstrip("0")


class KrakenBook(SyncedBook):
    """One pair's book, verified against Kraken's checksum after every message.

    After a mismatch the book keeps applying updates (best effort, each verdict unverified)
    until the snapshot of a new subscription makes it verified again.
    """

    def apply(self, message: KrakenBookMessage) -> Verdict:
        """Apply one message; the verdict says whether the book still matches Kraken's."""
        book = self.book
        if message.depth is not None:
            book.depth = message.depth
        if message.snapshot:
            book.replace(message.bids, message.asks)
            self.start_sync()
        elif not self.has_snapshot:
            return self.unsynced()
        else:
            book.update(message.bids, message.asks)
            if not self.synced:
                return self.unsynced()
        if message.checksum is None:
            return self.verified()  # a v1 snapshot: it defines the book
        computed = checksum(*book.top(CHECKSUM_LEVELS))
        if computed != message.checksum:
            return self.break_sync(
                Reason.CHECKSUM_MISMATCH, expected=message.checksum, received=computed
            )
        return self.verified()


class KrakenBooks(Books[KrakenBook]):
    """Every pair's book on one connection; ``depth`` is the subscribed depth (v2 messages do
    not repeat it, v1 channel names do)."""

    def __init__(self, depth: int | None = None) -> None:
        super().__init__(lambda symbol: KrakenBook(symbol, depth))

    def apply(self, read: KrakenBookMessage | BookMalformed) -> tuple[str | None, Verdict]:
        """Apply what :func:`read_v1` or :func:`read_v2` read: the symbol and the verdict."""
        if isinstance(read, BookMalformed):
            return self.malformed(read)
        return read.symbol, self.book(read.symbol).apply(read)


def parse_book_frame(
    text: str, envelope: Envelope, max_chars: int = DEFAULT_MAX_FRAME_CHARS
) -> ParsedFrame:
    """One frame of a book feed (v1 or v2, as ``envelope.protocol`` says): its book message,
    or what any other frame holds (acks, errors, heartbeats) as the trade parser reads it."""
    v1 = envelope.protocol == "kraken-v1"
    parsed = parse_with(text, envelope, max_chars, None, _v1_frame if v1 else _v2_frame)
    return with_dead_letter(parsed, text, envelope, max_chars)


def _v1_frame(data: object, envelope: Envelope) -> ParsedFrame:
    channel = data[-2] if isinstance(data, list) and len(data) >= 2 else None
    if isinstance(channel, str) and channel.startswith(V1_CHANNEL_PREFIX):
        return ParsedFrame(books=(read_v1(data),))
    return read_v1_message(data, envelope)


def _v2_frame(data: object, envelope: Envelope) -> ParsedFrame:
    if isinstance(data, dict) and data.get("channel") == "book":
        return ParsedFrame(books=(read_v2(data),))
    return read_v2_message(data, envelope)


# --- v1 ---------------------------------------------------------------------------------------


def read_v1(data: object) -> KrakenBookMessage | BookMalformed:
    """A v1 ``book`` frame (``[channelID, {...}, ..., "book-<depth>", pair]``), or why not."""
    try:
        return _v1(data)
    except MalformedFrameError as exc:
        symbol = data[-1] if isinstance(data, list) and data and isinstance(data[-1], str) else None
        return BookMalformed(str(exc), symbol)


def _v1(data: object) -> KrakenBookMessage:
    if not isinstance(data, list) or len(data) not in (4, 5):
        reject("book frame is not [channelID, levels..., channel name, pair]")
    channel, pair = data[-2], data[-1]
    if not isinstance(channel, str) or not isinstance(pair, str):
        reject("book frame without channel name and pair")
    depth = _v1_depth(channel)
    bodies = [body for body in data[1:-2] if isinstance(body, dict)]
    if len(bodies) != len(data) - 3:
        reject("book frame levels are not objects")
    if "as" in bodies[0] or "bs" in bodies[0]:
        if len(bodies) != 1 or set(bodies[0]) - {"as", "bs"}:
            reject("book snapshot has unexpected members")
        snapshot = bodies[0]
        return KrakenBookMessage(
            pair,
            True,
            read_levels(snapshot.get("bs", []), "book bs", _V1_LEVEL),
            read_levels(snapshot.get("as", []), "book as", _V1_LEVEL),
            None,
            depth,
        )
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()
    checksum_text: object = None
    for body in bodies:
        if set(body) - {"a", "b", "c"} or not set(body) & {"a", "b"}:
            reject("book update has unexpected members")
        bids += read_levels(body.get("b", []), "book b", _V1_LEVEL)
        asks += read_levels(body.get("a", []), "book a", _V1_LEVEL)
        checksum_text = body.get("c", checksum_text)  # in the last object of the message
    return KrakenBookMessage(pair, False, bids, asks, _v1_checksum(checksum_text), depth)


def _v1_depth(channel: str) -> int:
    if not channel.startswith(V1_CHANNEL_PREFIX):
        reject(f"channel {channel!r} is not a book channel")
    suffix = channel.removeprefix(V1_CHANNEL_PREFIX)
    if not (suffix.isascii() and suffix.isdigit()) or int(suffix) not in DEPTHS:
        reject(f"book channel {channel!r} names no depth Kraken offers")
    return int(suffix)


def _v1_checksum(text: object) -> int:
    if not isinstance(text, str) or not (text.isascii() and text.isdigit()) or len(text) > 10:
        reject(f"book update checksum {text!r} is not an unsigned 32-bit integer text")
    if int(text) > _CRC_MAX:
        reject(f"book update checksum {text!r} is not an unsigned 32-bit integer text")
    return int(text)


# --- v2 ---------------------------------------------------------------------------------------


def read_v2(data: object) -> KrakenBookMessage | BookMalformed:
    """A v2 ``book`` message (``{"channel": "book", "type": ..., "data": [...]}``), or why not."""
    try:
        return _v2(data)
    except MalformedFrameError as exc:
        return BookMalformed(str(exc), _v2_symbol(data))


def _v2_symbol(data: object) -> str | None:
    rows = data.get("data") if isinstance(data, dict) else None
    if isinstance(rows, list) and len(rows) == 1 and isinstance(rows[0], dict):
        symbol = rows[0].get("symbol")
        return symbol if isinstance(symbol, str) else None
    return None


def _v2(data: object) -> KrakenBookMessage:
    if not isinstance(data, dict) or data.get("channel") != "book":
        reject("not a book message")
    kind = data.get("type")
    if kind not in ("snapshot", "update"):
        reject(f"book message type {kind!r} is neither snapshot nor update")
    rows = data.get("data")
    # "The book element is always the first and only item in the data payload."
    if not isinstance(rows, list) or len(rows) != 1 or not isinstance(rows[0], dict):
        reject("book message data is not one object")
    row = rows[0]
    symbol = row.get("symbol")
    if not isinstance(symbol, str):
        reject("book message without a symbol")
    value = row.get("checksum")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _CRC_MAX:
        reject(f"book checksum {value!r} is not an unsigned 32-bit integer")
    bids, asks = _v2_levels(row.get("bids"), "bids"), _v2_levels(row.get("asks"), "asks")
    exchange_us = _v2_time(row.get("timestamp"))
    return KrakenBookMessage(symbol, kind == "snapshot", bids, asks, value, None, exchange_us)


def _v2_time(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        reject(f"book timestamp {value!r} is not RFC 3339 text")
    try:
        return rfc3339_micros(value, "book timestamp")
    except TradeInvalidError as exc:
        reject(str(exc))


def _v2_levels(rows: object, what: str) -> tuple[Level, ...]:
    if not isinstance(rows, list):
        reject(f"book {what} are not an array")
    levels = []
    for row in rows:
        if not isinstance(row, dict):
            reject(f"book {what} level is not an object")
        level = read_level(_number_text(row.get("price")), _number_text(row.get("qty")))
        if level is None:
            reject(f"book {what} level {row!r} has no plain decimal price and qty")
        levels.append(level)
    return tuple(levels)


def _number_text(value: object) -> str | None:
    """The exact text of a JSON number read as Decimal or int (never a float, never a bool)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        return None
    if isinstance(value, Decimal) and not value.is_finite():
        return None
    return decimal_text(value)
