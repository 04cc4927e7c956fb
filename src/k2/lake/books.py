"""An order book at any instant, rebuilt from ``silver.book_changes``.

The book of one (exchange, symbol) at an instant T is rebuilt from the newest snapshot message K2
received at or before T, then every later message of that symbol received up to T, applied in
the order the capture recorded them (their Kafka order: Binance's updates held for a REST snapshot
follow it), each level setting the size at its price (0 removes the level), the book cut to the
message's ``depth`` after each message where the exchange sends no removal for a level pushed
out of it (Kraken, Bybit). Messages the capture ignored (older than their snapshot) are skipped.
The time axis is K2's receive time, the one every message has.

The result says whether every message applied was verified against the exchange's checksum or
sequence: when one was not, the book at T may differ from the exchange's, and a book gap of the
same interval is in ``gold.gaps``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import groupby
from typing import Any, NamedTuple

from k2.errors import QueryError
from k2.exchanges.book import Level, OrderBook
from k2.lake.export import decimal_text, time_text

# Held updates are recorded after their snapshot but received before it: seconds, never this.
_HELD_BEFORE = timedelta(hours=1)
_EIGHTEEN = Decimal(1).scaleb(-18)


@dataclass(frozen=True)
class BookAt:
    """One symbol's book at an instant: the best ``depth`` levels a side, best first."""

    exchange: str
    symbol: str
    at: datetime
    snapshot_at: datetime  # when K2 received the snapshot the book starts from
    last_at: datetime  # when K2 received the last message applied
    messages: int  # messages applied, the snapshot included
    verified: bool  # every message applied was verified
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
    position: Position  # where in Kafka the last message applied is
    depth: int | None  # levels a side the book is cut to after each message, or None

    def document(self) -> dict[str, Any]:
        """As JSON: times in RFC 3339, each level ``[price, size]`` as exact decimal text."""
        return {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "at": time_text(self.at),
            "snapshot_at": time_text(self.snapshot_at),
            "last_at": time_text(self.last_at),
            "messages": self.messages,
            "verified": self.verified,
            "bids": [[decimal_text(p), decimal_text(s)] for p, s in self.bids],
            "asks": [[decimal_text(p), decimal_text(s)] for p, s in self.asks],
        }


def _level(price: Decimal, size: Decimal) -> Level:
    return Level(price, size, str(price), str(size))


def book_at(
    connection: Any, table: str, exchange: str, symbol: str, at: datetime, depth: int
) -> BookAt:
    """The book of ``symbol`` (unified, ``BTC/USD``) on ``exchange`` at ``at`` (UTC), read with
    ``connection`` (DuckDB, :class:`~k2.lake.query.LakeViews`) from ``table`` (the view of
    ``silver.book_changes``, quoted).

    Raises :class:`QueryError` when no snapshot of the symbol was received at or before ``at``.
    """
    if depth < 1:
        raise QueryError(f"depth must be at least 1, not {depth}")
    import duckdb

    try:
        return _rebuilt(connection, table, exchange, symbol, at, depth)
    except duckdb.Error as exc:
        raise QueryError(" ".join(str(exc).split())) from exc


class Position(NamedTuple):
    """A book message's place in Kafka, and the exchange's symbol its records are keyed by."""

    topic: str
    partition: int
    offset: int
    exchange_symbol: str


class _Start(NamedTuple):
    position: Position
    received: datetime


@dataclass(frozen=True)
class _Message:
    """One book message of the rows read: its levels and what the capture said of it."""

    offset: int
    snapshot: bool
    bids: list[Level]
    asks: list[Level]
    verified: bool
    depth: int | None
    received: datetime


def _messages(rows: list[tuple[Any, ...]]) -> Iterator[_Message]:
    """The messages of rows ordered by Kafka offset (one row per level)."""
    for _, group in groupby(rows, key=lambda row: row[0]):
        levels = list(group)
        offset, is_snapshot, _, _, _, ok, cut, received = levels[0]
        yield _Message(
            int(offset),
            bool(is_snapshot),
            [_level(price, size) for _, _, side, price, size, *_ in levels if side == "bid"],
            [_level(price, size) for _, _, side, price, size, *_ in levels if side == "ask"],
            bool(ok),
            cut,
            received,
        )


def _apply(book: OrderBook, message: _Message) -> None:
    book.depth = message.depth
    if message.snapshot:
        book.replace(message.bids, message.asks)
    else:
        book.update(message.bids, message.asks)


def _snapshot_before(
    connection: Any, table: str, exchange: str, symbol: str, at: datetime
) -> _Start | None:
    """Where the newest snapshot received at or before ``at`` is, and when it was received;
    None without one."""
    found = connection.execute(
        "SELECT kafka_topic, kafka_partition, kafka_offset, exchange_symbol, received_ts "  # noqa: S608 - a view name, not a user's text
        f"FROM {table} WHERE exchange = ? AND symbol = ? AND is_snapshot "
        "AND outcome <> 'ignored' AND received_ts <= ? "
        "ORDER BY received_ts DESC, kafka_offset DESC LIMIT 1",
        [exchange, symbol, at],
    ).fetchone()
    if found is None:
        return None
    topic, partition, offset, exchange_symbol, received = found
    return _Start(Position(topic, int(partition), int(offset), exchange_symbol), received)


def _rows_from(
    connection: Any,
    table: str,
    series: tuple[str, str],
    snapshot: _Start,
    until: datetime,
) -> list[tuple[Any, ...]]:
    """The level rows of the messages from ``snapshot`` on, received up to ``until``, in the
    order the capture recorded them."""
    (topic, partition, offset, _), snapshot_at = snapshot
    rows: list[tuple[Any, ...]] = connection.execute(
        "SELECT kafka_offset, is_snapshot, side, price, size, verified, depth, received_ts "  # noqa: S608
        f"FROM {table} WHERE exchange = ? AND symbol = ? AND kafka_topic = ? "
        "AND kafka_partition = ? AND kafka_offset >= ? AND outcome <> 'ignored' "
        "AND received_ts >= ? AND received_ts <= ? ORDER BY kafka_offset, side, level",
        [*series, topic, partition, offset, snapshot_at - _HELD_BEFORE, until],
    ).fetchall()
    return rows


def _no_snapshot(exchange: str, symbol: str, at: datetime) -> QueryError:
    return QueryError(
        f"no {exchange} {symbol} book snapshot at or before {at.isoformat()}: its books "
        f"were not captured then (K2_INGEST__{exchange.upper()}__BOOKS=true captures them)"
    )


def _rebuilt(
    connection: Any, table: str, exchange: str, symbol: str, at: datetime, depth: int
) -> BookAt:
    snapshot = _snapshot_before(connection, table, exchange, symbol, at)
    if snapshot is None:
        raise _no_snapshot(exchange, symbol, at)
    snapshot_at = snapshot.received
    book = OrderBook()
    verified, last_at, messages, last = True, snapshot_at, 0, snapshot.position.offset
    for message in _messages(_rows_from(connection, table, (exchange, symbol), snapshot, at)):
        _apply(book, message)
        verified = verified and message.verified
        last_at = max(last_at, message.received)
        messages += 1
        last = message.offset
    top_bids, top_asks = book.top(depth)
    return BookAt(
        exchange=exchange,
        symbol=symbol,
        at=at,
        snapshot_at=snapshot_at,
        last_at=last_at,
        messages=messages,
        verified=verified,
        bids=[(level.price, level.size) for level in top_bids],
        asks=[(level.price, level.size) for level in top_asks],
        position=snapshot.position._replace(offset=last),
        depth=book.depth,
    )


@dataclass(frozen=True)
class TopOfBook:
    """The best bid and ask of a book from ``at`` on (K2's receive time), and whether every
    message applied since its snapshot was verified. A side with no level is None."""

    at: datetime
    bid: tuple[Decimal, Decimal] | None
    ask: tuple[Decimal, Decimal] | None
    verified: bool

    @property
    def spread(self) -> Decimal | None:
        """Ask minus bid, exact."""
        return None if self.bid is None or self.ask is None else self.ask[0] - self.bid[0]

    @property
    def mid(self) -> Decimal | None:
        """(bid + ask) / 2, rounded half-even to 18 decimals where it needs a 19th."""
        if self.bid is None or self.ask is None:
            return None
        return ((self.bid[0] + self.ask[0]) / 2).quantize(_EIGHTEEN, rounding=ROUND_HALF_EVEN)

    def document(self) -> dict[str, Any]:
        """As JSON: the time in RFC 3339, prices and sizes as exact decimal text."""

        def text(value: Decimal | None) -> str | None:
            return None if value is None else decimal_text(value)

        return {
            "time": time_text(self.at),
            "bid": text(self.bid[0]) if self.bid else None,
            "bid_size": text(self.bid[1]) if self.bid else None,
            "ask": text(self.ask[0]) if self.ask else None,
            "ask_size": text(self.ask[1]) if self.ask else None,
            "spread": text(self.spread),
            "mid": text(self.mid),
            "verified": self.verified,
        }


def top_of_book(
    connection: Any,
    table: str,
    exchange: str,
    symbol: str,
    window: tuple[datetime, datetime],
    limit: int,
) -> tuple[list[TopOfBook], datetime | None]:
    """The top of one book over ``[start, end)``: first the top in effect at ``start``, then
    one row at each later instant the best bid or ask (price or size) changed, at most
    ``limit`` rows; and where the next page starts (None when this one reaches ``end``).

    An instant is K2's receive time of the messages applied (an update held for its snapshot
    takes effect with the snapshot). Raises :class:`QueryError` when the book has no snapshot
    before ``end``.
    """
    import duckdb

    try:
        return _tops(connection, table, (exchange, symbol), window, limit)
    except duckdb.Error as exc:
        raise QueryError(" ".join(str(exc).split())) from exc


def _tops(
    connection: Any,
    table: str,
    series: tuple[str, str],
    window: tuple[datetime, datetime],
    limit: int,
) -> tuple[list[TopOfBook], datetime | None]:
    start, end = window
    snapshot = _snapshot_before(connection, table, *series, start)
    if snapshot is None:  # the book may begin inside the window
        first = connection.execute(
            f"SELECT min(received_ts) FROM {table} WHERE exchange = ? AND symbol = ? "  # noqa: S608
            "AND is_snapshot AND outcome <> 'ignored' AND received_ts >= ? AND received_ts < ?",
            [*series, start, end],
        ).fetchone()
        if first is None or first[0] is None:
            raise _no_snapshot(*series, end)
        snapshot = _snapshot_before(connection, table, *series, first[0])
        if snapshot is None:
            raise _no_snapshot(*series, end)
    rows = _rows_from(connection, table, series, snapshot, end)
    book = OrderBook()
    tops: list[TopOfBook] = []
    shown: TopOfBook | None = None
    at, verified = snapshot.received, True
    for message in _messages(rows):
        when = max(at, message.received)
        if when != at and at < end:
            shown = _show(tops, shown, _top(book, max(at, start), verified))
            if len(tops) > limit:
                return tops[:limit], tops[limit].at
        at = when
        verified = message.verified and (verified or message.snapshot)
        _apply(book, message)
    if at < end:
        _show(tops, shown, _top(book, max(at, start), verified))
    if len(tops) > limit:
        return tops[:limit], tops[limit].at
    return tops, None


def _top(book: OrderBook, at: datetime, verified: bool) -> TopOfBook:
    bid, ask = book.best_bid(), book.best_ask()
    return TopOfBook(
        at,
        None if bid is None else (bid.price, bid.size),
        None if ask is None else (ask.price, ask.size),
        verified,
    )


def _show(tops: list[TopOfBook], shown: TopOfBook | None, top: TopOfBook) -> TopOfBook:
    """Add ``top`` when it differs from the last row shown; the last row shown."""
    if shown is not None and (shown.bid, shown.ask, shown.verified) == (
        top.bid,
        top.ask,
        top.verified,
    ):
        return shown
    if tops and tops[-1].at == top.at:  # the state before start, replaced by the one at it
        tops.pop()
    tops.append(top)
    return top
