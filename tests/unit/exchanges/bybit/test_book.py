"""Bybit v5 ``orderbook.<depth>.<symbol>`` books, on frames built from the documented message
shape (the recorded Bybit session is of the legacy feed): update id continuity, ``u`` = 1 as a
restart, snapshots again on resubscription, the book cut to the topic's depth."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2.exchanges.booksync import BookMalformed, Outcome, Reason, Verdict
from k2.exchanges.bybit.book import BybitBookMessage, BybitBooks, read_message
from k2.exchanges.parse import load_json

from ..strategies import json_mutations, json_values

Rows = list[tuple[str, str]]


def message(
    kind: str, u: int, bids: Rows | None = None, asks: Rows | None = None, depth: int = 50
) -> object:
    """A message of the documented shape (Bybit's example: orderbook.50.BTCUSDT)."""
    body = {
        "s": "BTCUSDT",
        "b": [list(row) for row in bids or []],
        "a": [list(row) for row in asks or []],
        "u": u,
        "seq": 7961638724 + u,
    }
    frame = {"topic": f"orderbook.{depth}.BTCUSDT", "type": kind, "ts": 1672304484978, "data": body}
    return load_json(json.dumps(frame))


def apply(books: BybitBooks, value: object) -> Verdict:
    read = read_message(value)
    assert isinstance(read, BybitBookMessage)
    return books.apply(read)[1]


SNAPSHOT_BIDS = [("16493.50", "0.006"), ("16493.00", "0.100")]
SNAPSHOT_ASKS = [("16611.00", "0.029"), ("16612.00", "0.213")]


def test_deltas_numbered_one_above_the_book_verify() -> None:
    """After a snapshot each delta's ``u`` is the book's + 1; sizes are absolute, 0 removes."""
    books = BybitBooks()
    assert apply(books, message("snapshot", 18521288, SNAPSHOT_BIDS, SNAPSHOT_ASKS)).verified
    assert apply(books, message("delta", 18521289, [("16493.50", "0")], [("16611.00", "1.5")])) == (
        Verdict(Outcome.VERIFIED, sequence=18521289)
    )
    assert apply(books, message("delta", 18521290)).verified
    bids, asks = books.book("BTCUSDT").book.top(1)
    assert [(level.price, level.size) for level in bids] == [
        (Decimal("16493.00"), Decimal("0.100"))
    ]
    assert [(level.price, level.size) for level in asks] == [(Decimal("16611.00"), Decimal("1.5"))]


def test_a_skipped_update_id_is_a_gap_until_the_next_snapshot() -> None:
    """A ``u`` other than the book's + 1 is a gap naming both ids; later deltas are applied
    but unverified, and the snapshot of a resubscription makes the book verified again."""
    books = BybitBooks()
    apply(books, message("snapshot", 100, SNAPSHOT_BIDS, SNAPSHOT_ASKS))
    gap = apply(books, message("delta", 102, [("16493.50", "1")]))
    assert (gap.reason, gap.expected, gap.received) == (Reason.SEQUENCE_GAP, 101, 102)
    assert apply(books, message("delta", 103)).reason is Reason.AWAITING_SNAPSHOT
    assert apply(books, message("snapshot", 500, SNAPSHOT_BIDS)).verified
    assert apply(books, message("delta", 501)).verified


def test_update_id_one_is_a_restart() -> None:
    """``u`` = 1 comes with a snapshot when Bybit's service restarts: it replaces the book. A
    delta numbered 1 on a book above it is a reset the book cannot follow."""
    books = BybitBooks()
    apply(books, message("snapshot", 9000, SNAPSHOT_BIDS, SNAPSHOT_ASKS))
    assert apply(books, message("snapshot", 1, [("16500.00", "1")])).verified
    assert apply(books, message("delta", 2)).verified
    assert [level.price for level in books.book("BTCUSDT").book.bids] == [Decimal("16500.00")]
    reset = apply(books, message("delta", 1))
    assert (reset.reason, reset.expected, reset.received) == (Reason.SEQUENCE_RESET, 3, 1)


def test_a_repeated_depth_1_snapshot_with_the_same_u_is_fine() -> None:
    """At depth 1 Bybit re-sends the snapshot every 3 s without change, with the same ``u``."""
    books = BybitBooks()
    for _ in range(3):
        verdict = apply(books, message("snapshot", 77, [("1.0", "2")], [("1.1", "3")], depth=1))
        assert verdict.verified


def test_the_book_is_cut_to_the_topics_depth() -> None:
    """At depth 50 a new best bid pushes the 50th bid out of the book."""
    books = BybitBooks()
    bids = [(f"{1000 - n}.00", "1") for n in range(50)]
    apply(books, message("snapshot", 10, bids))
    assert apply(books, message("delta", 11, [("1000.50", "2")])).verified
    book = books.book("BTCUSDT").book
    assert len(book.bids) == 50
    assert book.bids.get(Decimal("951.00")) is None


def test_a_delta_before_any_snapshot_is_not_applied() -> None:
    """Without a snapshot the delta cannot be verified or applied."""
    books = BybitBooks()
    verdict = apply(books, message("delta", 5, [("1", "1")]))
    assert verdict.reason is Reason.UPDATE_BEFORE_SNAPSHOT
    assert len(books.book("BTCUSDT").book.bids) == 0


@pytest.mark.parametrize(
    ("topic", "body"),
    [
        ("orderbook.50.BTCUSDT", {"s": "ETHUSDT", "b": [], "a": [], "u": 1}),  # another symbol
        ("orderbook.50.BTCUSDT", {"s": "BTCUSDT", "b": [["1", 2]], "a": [], "u": 1}),
        ("orderbook.50.BTCUSDT", {"s": "BTCUSDT", "b": [], "a": [], "u": "1"}),
        ("orderbook.x.BTCUSDT", {"s": "BTCUSDT", "b": [], "a": [], "u": 1}),
    ],
)
def test_malformed_messages_are_reported_with_their_symbol(
    topic: str, body: dict[str, object]
) -> None:
    """A message of the wrong shape is malformed, not raised, and unverifies its symbol."""
    frame = {"topic": topic, "type": "delta", "ts": 1, "data": body}
    read = read_message(load_json(json.dumps(frame)))
    assert isinstance(read, BookMalformed)
    symbol, verdict = BybitBooks().apply(read)
    assert (symbol, verdict.reason) == ("BTCUSDT", Reason.MALFORMED)


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values, json_mutations(message("delta", 3, [("1", "2")]))))
def test_the_reader_never_raises(value: object) -> None:
    """Any JSON value, or a message with one part changed, is read or reported."""
    read = read_message(value)
    assert isinstance(read, BybitBookMessage | BookMalformed)
    BybitBooks().apply(read)
