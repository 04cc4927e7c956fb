"""An L2 order book of one symbol: exact prices and sizes, and the text the exchange sent for them.

Each side maps a price to its level; a size of 0 removes the level. Prices and sizes are
:class:`~decimal.Decimal` (equal prices written differently, ``"1.0"`` and ``"1.00"``, are one
level), and each level also keeps the text the exchange sent for its price and size, because the
exchanges' checksums are computed over that text and not over a normalised number: Kraken strips the
decimal point and the leading zeros of ``"0.00100000"`` (trailing zeros count), OKX joins
``price:size`` exactly as sent.

Each side keeps its sort keys in a plain sorted list beside the dict of levels (the bid key is the
negated price, so both lists run best first). A change to a level that exists is a dict lookup;
adding or removing a level is a binary search plus one ``list.insert``/``del``, a single memmove
of at most a few thousand pointers; the top N levels are a slice, never a sort. That beats a
balanced tree written in Python for the depths exchanges send (10 to 5,000 levels a side) and needs
no dependency.

After a message the book can be cut to its subscribed depth (:meth:`OrderBook.truncate`): Kraken
sends no removal for a level pushed out of the subscribed depth, so the worst levels beyond it
must go.
"""

from __future__ import annotations

import re
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

_PLAIN_DECIMAL = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
MAX_DECIMAL_CHARS = 64  # no price or size is longer; a longer text is refused, not converted


class Side(StrEnum):
    """A side of the book."""

    BID = "bid"
    ASK = "ask"


class Level(NamedTuple):
    """One price level: the exact values and the exchange's text for them."""

    price: Decimal
    size: Decimal
    price_text: str
    size_text: str


def read_level(price: object, size: object) -> Level | None:
    """A level from the exchange's price and size text (plain non-negative decimals such as
    ``"0.05120"``), or None when either is not such text (a number, a sign, an exponent, spaces,
    an absurd length)."""
    if not isinstance(price, str) or not isinstance(size, str):
        return None
    if len(price) > MAX_DECIMAL_CHARS or len(size) > MAX_DECIMAL_CHARS:
        return None
    if not (_PLAIN_DECIMAL.fullmatch(price) and _PLAIN_DECIMAL.fullmatch(size)):
        return None
    return Level(Decimal(price), Decimal(size), price, size)


class BookSide:
    """The levels of one side, best first."""

    __slots__ = ("_descending", "_keys", "_levels")

    def __init__(self, side: Side) -> None:
        self._descending = side is Side.BID
        self._keys: list[Decimal] = []  # ascending; the negated price for bids
        self._levels: dict[Decimal, Level] = {}  # sort key → level

    def _key(self, price: Decimal) -> Decimal:
        return -price if self._descending else price

    def set(self, level: Level) -> bool:
        """Set the level at ``level.price`` (size 0 removes it); True when the side changed."""
        key = self._key(level.price)
        if not level.size:
            if self._levels.pop(key, None) is None:
                return False  # removing a level the book does not hold is normal (Binance)
            del self._keys[bisect_left(self._keys, key)]
            return True
        previous = self._levels.get(key)
        if previous is None:
            insort(self._keys, key)
        elif previous == level:
            return False
        self._levels[key] = level
        return True

    def get(self, price: Decimal) -> Level | None:
        """The level at ``price``, or None."""
        return self._levels.get(self._key(price))

    def best(self) -> Level | None:
        """The best level (highest bid, lowest ask), or None when the side is empty."""
        return self._levels[self._keys[0]] if self._keys else None

    def top(self, count: int) -> list[Level]:
        """The best ``count`` levels, best first."""
        levels = self._levels
        return [levels[key] for key in self._keys[:count]]

    def truncate(self, depth: int) -> int:
        """Keep the best ``depth`` levels; the number of levels removed."""
        cut = self._keys[depth:]
        for key in cut:
            del self._levels[key]
        del self._keys[depth:]
        return len(cut)

    def clear(self) -> None:
        """Remove every level."""
        self._keys.clear()
        self._levels.clear()

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[Level]:
        levels = self._levels
        return (levels[key] for key in self._keys)


class OrderBook:
    """Bids and asks of one symbol, optionally held to a depth (levels a side).

    The book applies what it is given; whether a message may be applied, and whether the result
    matches the exchange, is decided by the exchange's rule (``k2.exchanges.<exchange>.book``).
    """

    __slots__ = ("asks", "bids", "depth")

    def __init__(self, depth: int | None = None) -> None:
        if depth is not None and depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
        self.depth = depth
        self.bids = BookSide(Side.BID)
        self.asks = BookSide(Side.ASK)

    def side(self, side: Side) -> BookSide:
        """The bids or the asks."""
        return self.bids if side is Side.BID else self.asks

    def replace(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """A snapshot: the book becomes exactly these levels (sizes of 0 are skipped), cut to
        the depth."""
        self.bids.clear()
        self.asks.clear()
        for level in bids:
            self.bids.set(level)
        for level in asks:
            self.asks.set(level)
        self.truncate()

    def update(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """An exchange's update message: every level in the order sent (size 0 removes), then the
        cut to the depth."""
        for level in bids:
            self.bids.set(level)
        for level in asks:
            self.asks.set(level)
        self.truncate()

    def apply(self, side: Side, level: Level) -> bool:
        """One level update (size 0 removes it); True when the book changed. Does not truncate:
        an exchange's message is applied whole, then :meth:`truncate` runs once."""
        return (self.bids if side is Side.BID else self.asks).set(level)

    def truncate(self) -> int:
        """Cut both sides to the depth (when the book has one); the number of levels removed."""
        if self.depth is None:
            return 0
        return self.bids.truncate(self.depth) + self.asks.truncate(self.depth)

    def top(self, count: int) -> tuple[list[Level], list[Level]]:
        """The best ``count`` bids (highest first) and asks (lowest first)."""
        return self.bids.top(count), self.asks.top(count)

    def best_bid(self) -> Level | None:
        """The highest bid, or None."""
        return self.bids.best()

    def best_ask(self) -> Level | None:
        """The lowest ask, or None."""
        return self.asks.best()

    def clear(self) -> None:
        """Remove every level of both sides."""
        self.bids.clear()
        self.asks.clear()
