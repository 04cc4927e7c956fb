"""Coinbase Advanced Trade ``level2`` books, on frames built from the documented message shape
(the recorded Coinbase session is of the older Exchange feed): ``sequence_num`` is checked per
connection across every channel, and a gap unverifies every book of the connection."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2.exchanges.booksync import BookMalformed, Outcome, Reason, Verdict
from k2.exchanges.coinbase.book import CoinbaseBooks, L2Message, read_l2, read_sequence
from k2.exchanges.parse import load_json

from ..strategies import json_mutations, json_values

EVENT_TIME = "2023-02-09T20:32:50.714964855Z"


def l2(sequence: int, *events: tuple[str, str, list[tuple[str, str, str]]]) -> object:
    """An ``l2_data`` message: events of (type, product, [(side, price_level, new_quantity)])."""
    return load_json(
        json.dumps(
            {
                "channel": "l2_data",
                "client_id": "",
                "timestamp": EVENT_TIME,
                "sequence_num": sequence,
                "events": [
                    {
                        "type": kind,
                        "product_id": product,
                        "updates": [
                            {
                                "side": side,
                                "event_time": EVENT_TIME,
                                "price_level": price,
                                "new_quantity": quantity,
                            }
                            for side, price, quantity in updates
                        ],
                    }
                    for kind, product, updates in events
                ],
            }
        )
    )


def heartbeat(sequence: int) -> object:
    """A ``heartbeats`` message: another channel, numbered by the same counter."""
    return load_json(
        json.dumps(
            {
                "channel": "heartbeats",
                "client_id": "",
                "timestamp": EVENT_TIME,
                "sequence_num": sequence,
                "events": [{"current_time": "2023-02-09 20:32:50", "heartbeat_counter": 7}],
            }
        )
    )


def apply(books: CoinbaseBooks, value: object) -> list[tuple[str | None, Verdict]]:
    read = read_l2(value)
    assert isinstance(read, L2Message)
    return books.apply(read)


def snapshots(books: CoinbaseBooks, sequence: int) -> None:
    """Snapshots of BTC-USD and ETH-USD in one message numbered ``sequence``."""
    btc = [("bid", "21921.73", "0.06317902"), ("offer", "21921.74", "1.5")]
    eth = [("bid", "1500.10", "3"), ("offer", "1500.20", "4")]
    verdicts = apply(
        books, l2(sequence, ("snapshot", "BTC-USD", btc), ("snapshot", "ETH-USD", eth))
    )
    assert [verdict.outcome for _, verdict in verdicts] == [Outcome.VERIFIED] * 2


def test_messages_numbered_in_order_across_channels_keep_every_book_verified() -> None:
    """Book messages interleaved with other channels' messages, each one above the one before,
    verify; sizes are absolute and ``"0"`` removes the level; ``offer`` is the ask side."""
    books = CoinbaseBooks()
    assert books.observe(read_sequence(heartbeat(0)) or 0) == []
    snapshots(books, 1)
    assert books.observe(2) == []
    verdicts = apply(
        books, l2(3, ("update", "BTC-USD", [("bid", "21921.73", "0"), ("bid", "21921.70", "2")]))
    )
    assert verdicts == [("BTC-USD", Verdict(Outcome.VERIFIED, sequence=3))]
    bids, asks = books.book("BTC-USD").book.top(5)
    assert [(level.price, level.size) for level in bids] == [(Decimal("21921.70"), Decimal(2))]
    assert [level.price for level in asks] == [Decimal("21921.74")]


def test_a_skipped_number_unverifies_every_book_of_the_connection() -> None:
    """A lost message (here the heartbeat numbered 3) could have been any product's: every
    synced book breaks with the expected and received numbers, and stays unverified until its
    own snapshot."""
    books = CoinbaseBooks()
    snapshots(books, 1)
    books.observe(2)
    verdicts = apply(books, l2(4, ("update", "ETH-USD", [("offer", "1500.30", "1")])))
    gaps = [(product, v.reason, v.expected, v.received) for product, v in verdicts[:2]]
    assert sorted(gaps) == [
        ("BTC-USD", Reason.SEQUENCE_GAP, 3, 4),
        ("ETH-USD", Reason.SEQUENCE_GAP, 3, 4),
    ]
    assert verdicts[2] == ("ETH-USD", Verdict(Outcome.UNVERIFIED, Reason.AWAITING_SNAPSHOT, 4))
    apply(books, l2(5, ("snapshot", "ETH-USD", [("bid", "1500.00", "1")])))
    later = apply(books, l2(6, ("update", "ETH-USD", []), ("update", "BTC-USD", [])))
    assert [(product, verdict.outcome) for product, verdict in later] == [
        ("ETH-USD", Outcome.VERIFIED),
        ("BTC-USD", Outcome.UNVERIFIED),
    ]


def test_a_number_going_back_is_a_gap_too() -> None:
    """A repeated or lower ``sequence_num`` is not the message expected: the books break."""
    books = CoinbaseBooks()
    snapshots(books, 7)
    (gap_btc, gap_eth) = books.observe(7)
    assert gap_btc[1].reason is Reason.SEQUENCE_GAP
    assert gap_btc[1].detail == "sequence_num went back"
    assert gap_eth[0] == "ETH-USD"


def test_an_update_before_its_snapshot_is_not_applied() -> None:
    """A product's update before its first snapshot cannot be verified or applied."""
    books = CoinbaseBooks()
    ((product, verdict),) = apply(books, l2(0, ("update", "SOL-USD", [("bid", "20", "1")])))
    assert (product, verdict.reason) == ("SOL-USD", Reason.UPDATE_BEFORE_SNAPSHOT)
    assert len(books.book("SOL-USD").book.bids) == 0


def test_a_new_connection_numbers_from_its_own_start() -> None:
    """After a disconnection every book awaits a snapshot, and the first number of the next
    connection is not compared with the last of the previous one."""
    books = CoinbaseBooks()
    snapshots(books, 50)
    assert {verdict.reason for _, verdict in books.disconnected()} == {Reason.DISCONNECTED}
    assert books.observe(0) == []
    snapshots(books, 1)


@pytest.mark.parametrize(
    "change",
    [
        {"side": "ask", "price_level": "1", "new_quantity": "1"},  # Coinbase says "offer"
        {"side": "bid", "price_level": 1.5, "new_quantity": "1"},
        {"side": "bid", "price_level": "1", "new_quantity": "-1"},
        {"side": "bid", "price_level": "1"},
    ],
)
def test_malformed_messages_are_reported_with_their_product(change: dict[str, object]) -> None:
    """A message of the wrong shape is malformed, not raised; its one product is unverified."""
    books = CoinbaseBooks()
    snapshots(books, 1)
    event = {"type": "update", "product_id": "BTC-USD", "updates": [change]}
    message = {"channel": "l2_data", "timestamp": EVENT_TIME, "sequence_num": 2, "events": [event]}
    read = read_l2(load_json(json.dumps(message)))
    assert isinstance(read, BookMalformed)
    ((product, verdict),) = books.apply(read)
    assert (product, verdict.reason) == ("BTC-USD", Reason.MALFORMED)
    assert books.book("BTC-USD").broken_by == verdict
    assert books.book("ETH-USD").synced


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values, json_mutations(l2(3, ("update", "BTC-USD", [("bid", "1", "2")])))))
def test_the_readers_never_raise(value: object) -> None:
    """Any JSON value, or a message with one part changed, is read or reported."""
    read = read_l2(value)
    assert isinstance(read, L2Message | BookMalformed)
    CoinbaseBooks().apply(read)
    found = read_sequence(value)
    assert found is None or isinstance(found, int)


def test_a_product_id_that_is_not_text_is_reported_without_a_product() -> None:
    """An event whose product_id is an array or an object makes the message malformed with no
    product named, never an error of the reader."""
    for product in ([], {}, ["BTC-USD"]):
        message: Any = l2(3, ("update", "BTC-USD", [("bid", "1", "2")]))
        message["events"][0]["product_id"] = product
        read = read_l2(message)
        assert isinstance(read, BookMalformed) and read.symbol is None
