"""The L2 book holds exactly what a naive full sort of the same changes holds: top N in order,
size 0 removing a level, the depth kept, the exchange's text kept beside the exact values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2.exchanges.book import MAX_DECIMAL_CHARS, Level, OrderBook, Side, read_level

SETTINGS = settings(max_examples=150, deadline=None)

# Few prices, so that updates hit existing levels, and sizes that are often 0 (a removal).
prices = st.integers(min_value=1, max_value=60).map(lambda ticks: Decimal(ticks).scaleb(-1))
sizes = st.one_of(st.just(Decimal(0)), st.integers(1, 500).map(lambda n: Decimal(n).scaleb(-3)))
changes = st.tuples(st.sampled_from(Side), prices, sizes)
messages = st.lists(st.lists(changes, max_size=12), max_size=25)
depths = st.one_of(st.none(), st.integers(min_value=1, max_value=15))


def level(price: Decimal, size: Decimal) -> Level:
    """A level whose text is the value's plain text."""
    return Level(price, size, format(price, "f"), format(size, "f"))


def split(message: list[tuple[Side, Decimal, Decimal]]) -> tuple[list[Level], list[Level]]:
    """A message's changes as the bids and asks an exchange sends, each in the order sent."""
    bids = [level(price, size) for side, price, size in message if side is Side.BID]
    asks = [level(price, size) for side, price, size in message if side is Side.ASK]
    return bids, asks


class NaiveBook:
    """The reference: dicts, and a full sort whenever the order is needed."""

    def __init__(self, depth: int | None) -> None:
        self.depth = depth
        self.sides: dict[Side, dict[Decimal, Decimal]] = {Side.BID: {}, Side.ASK: {}}

    def apply(self, message: list[tuple[Side, Decimal, Decimal]]) -> None:
        for side, price, size in message:
            if size:
                self.sides[side][price] = size
            else:
                self.sides[side].pop(price, None)
        if self.depth is not None:
            for side in Side:
                kept = self.top(side, self.depth)
                self.sides[side] = dict(kept)

    def top(self, side: Side, count: int) -> list[tuple[Decimal, Decimal]]:
        ordered = sorted(self.sides[side].items(), reverse=side is Side.BID)
        return ordered[:count]


def pairs(levels: list[Level]) -> list[tuple[Decimal, Decimal]]:
    return [(found.price, found.size) for found in levels]


@SETTINGS
@given(messages, depths, st.integers(min_value=1, max_value=70))
def test_top_n_equals_a_full_sort_of_the_same_changes(
    updates: list[list[tuple[Side, Decimal, Decimal]]], depth: int | None, count: int
) -> None:
    """After any snapshot and updates, the top N of each side is what sorting everything gives."""
    book, naive = OrderBook(depth), NaiveBook(depth)
    for message in updates:
        book.update(*split(message))
        naive.apply(message)
        bids, asks = book.top(count)
        assert pairs(bids) == naive.top(Side.BID, count)
        assert pairs(asks) == naive.top(Side.ASK, count)
        assert len(book.bids) == len(naive.sides[Side.BID])
        assert len(book.asks) == len(naive.sides[Side.ASK])


@SETTINGS
@given(messages, st.integers(min_value=1, max_value=15))
def test_truncation_keeps_exactly_the_best_depth_levels(
    updates: list[list[tuple[Side, Decimal, Decimal]]], depth: int
) -> None:
    """After every message a side holds the best ``depth`` of the levels it would hold
    without the cut: exactly ``depth`` of them when it would hold as many."""
    book = OrderBook(depth)
    for message in updates:
        uncut = NaiveBook(None)
        uncut.apply([(side, found.price, found.size) for side in Side for found in book.side(side)])
        uncut.apply(message)
        book.update(*split(message))
        for side in Side:
            assert len(book.side(side)) == min(depth, len(uncut.sides[side]))
            assert pairs(list(book.side(side))) == uncut.top(side, depth)


@SETTINGS
@given(st.lists(st.tuples(prices, sizes.filter(bool)), max_size=30), prices)
def test_size_zero_removes_the_level_and_only_it(
    snapshot: list[tuple[Decimal, Decimal]], removed: Decimal
) -> None:
    """A size of 0 removes the level at that price; removing an absent level changes nothing."""
    book = OrderBook()
    book.replace([level(price, size) for price, size in snapshot], [])
    before = pairs(list(book.bids))
    changed = book.apply(Side.BID, level(removed, Decimal(0)))
    assert book.bids.get(removed) is None
    assert changed == any(price == removed for price, _ in before)
    assert pairs(list(book.bids)) == [(price, size) for price, size in before if price != removed]


@SETTINGS
@given(st.lists(changes, max_size=40), st.lists(changes, max_size=40))
def test_a_snapshot_replaces_everything(
    first: list[tuple[Side, Decimal, Decimal]], second: list[tuple[Side, Decimal, Decimal]]
) -> None:
    """A snapshot leaves exactly its own levels, whatever the book held."""
    book, naive = OrderBook(), NaiveBook(None)
    book.replace(*split(first))
    book.replace(*split(second))
    naive.apply(second)
    assert pairs(list(book.bids)) == naive.top(Side.BID, 100)
    assert pairs(list(book.asks)) == naive.top(Side.ASK, 100)


def test_best_levels_and_order() -> None:
    """Bids run highest first, asks lowest first; an empty side has no best level."""
    book = OrderBook()
    assert book.best_bid() is None
    assert book.best_ask() is None
    book.update(
        [level(Decimal("99.5"), Decimal(1)), level(Decimal("100"), Decimal(2))],
        [level(Decimal("101"), Decimal(3)), level(Decimal("100.5"), Decimal(4))],
    )
    assert book.best_bid() == level(Decimal("100"), Decimal(2))
    assert book.best_ask() == level(Decimal("100.5"), Decimal(4))
    bids, asks = book.top(10)
    assert [found.price for found in bids] == [Decimal("100"), Decimal("99.5")]
    assert [found.price for found in asks] == [Decimal("100.5"), Decimal("101")]


def test_equal_prices_written_differently_are_one_level_with_the_latest_text() -> None:
    """``"1.0"`` and ``"1.00"`` are one price; the level keeps the text last sent (checksums
    are computed over it)."""
    book = OrderBook()
    first = read_level("1.0", "5")
    second = read_level("1.00", "5.000")
    assert first is not None
    assert second is not None
    book.apply(Side.ASK, first)
    book.apply(Side.ASK, second)
    assert len(book.asks) == 1
    assert book.best_ask() == Level(Decimal(1), Decimal(5), "1.00", "5.000")


def test_an_unchanged_level_is_not_a_change() -> None:
    """Setting a level to exactly what it holds reports no change."""
    book = OrderBook()
    assert book.apply(Side.BID, level(Decimal(1), Decimal(2)))
    assert not book.apply(Side.BID, level(Decimal(1), Decimal(2)))
    assert not book.apply(Side.BID, level(Decimal(3), Decimal(0)))


@pytest.mark.parametrize(
    ("price", "size"),
    [
        ("0.05120", "0.00000500"),
        ("16493.50", "0"),
        ("7", "0.1"),
    ],
)
def test_read_level_keeps_the_exact_text(price: str, size: str) -> None:
    """Plain decimal text becomes exact values, and the text is kept as sent."""
    found = read_level(price, size)
    assert found == Level(Decimal(price), Decimal(size), price, size)


@pytest.mark.parametrize(
    ("price", "size"),
    [
        (1.5, "1"),  # a float
        (None, "1"),
        ("1", 2),
        ("-1", "1"),
        ("1", "-0"),
        ("1e3", "1"),
        ("NaN", "1"),
        (" 1", "1"),
        ("1.", "1"),
        (".5", "1"),
        ("١", "1"),  # an Arabic-Indic digit: isdigit() but not ASCII
        ("1" * (MAX_DECIMAL_CHARS + 1), "1"),
    ],
)
def test_read_level_refuses_anything_but_plain_decimal_text(price: object, size: object) -> None:
    """Numbers, signs, exponents, spaces, non-ASCII digits and absurd lengths are refused."""
    assert read_level(price, size) is None


def test_a_depth_below_one_is_refused() -> None:
    """A book cannot be held to fewer than one level a side."""
    with pytest.raises(ValueError, match="depth"):
        OrderBook(0)
