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

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from k2.errors import QueryError
from k2.exchanges.book import Level, OrderBook
from k2.lake.export import decimal_text, time_text

# Held updates are recorded after their snapshot but received before it: seconds, never this.
_HELD_BEFORE = timedelta(hours=1)


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


def _rebuilt(
    connection: Any, table: str, exchange: str, symbol: str, at: datetime, depth: int
) -> BookAt:
    found = connection.execute(
        f"SELECT kafka_topic, kafka_partition, kafka_offset, received_ts FROM {table} "  # noqa: S608 - a view name, not a user's text
        "WHERE exchange = ? AND symbol = ? AND is_snapshot AND outcome <> 'ignored' "
        "AND received_ts <= ? ORDER BY received_ts DESC, kafka_offset DESC LIMIT 1",
        [exchange, symbol, at],
    ).fetchone()
    if found is None:
        raise QueryError(
            f"no {exchange} {symbol} book snapshot at or before {at.isoformat()}: its books "
            f"were not captured then (K2_INGEST__{exchange.upper()}__BOOKS=true captures them)"
        )
    topic, partition, offset, snapshot_at = found
    rows = connection.execute(
        "SELECT kafka_offset, is_snapshot, side, price, size, verified, depth, received_ts "  # noqa: S608
        f"FROM {table} WHERE exchange = ? AND symbol = ? AND kafka_topic = ? "
        "AND kafka_partition = ? AND kafka_offset >= ? AND outcome <> 'ignored' "
        "AND received_ts >= ? AND received_ts <= ? ORDER BY kafka_offset, side, level",
        [exchange, symbol, topic, partition, offset, snapshot_at - _HELD_BEFORE, at],
    ).fetchall()
    book = OrderBook()
    verified, last_at, messages = True, snapshot_at, 0
    index = 0
    while index < len(rows):
        message = rows[index][0]
        end = index
        while end < len(rows) and rows[end][0] == message:
            end += 1
        levels = rows[index:end]
        _, is_snapshot, _, _, _, ok, cut, received = levels[0]
        bids = [_level(price, size) for _, _, side, price, size, *_ in levels if side == "bid"]
        asks = [_level(price, size) for _, _, side, price, size, *_ in levels if side == "ask"]
        book.depth = cut
        if is_snapshot:
            book.replace(bids, asks)
        else:
            book.update(bids, asks)
        verified = verified and bool(ok)
        last_at = max(last_at, received)
        messages += 1
        index = end
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
    )
