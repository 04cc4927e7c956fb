"""Binance's update id rule on the real diff depth events of a recorded session: each event
follows the one before, a snapshot placed among them (the session has none; they are built from
the documented REST shape) drops what it holds and is bridged, and a missing event is a gap
naming the ids."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2.exchanges.binance.book import (
    BinanceBooks,
    DepthSnapshot,
    DepthUpdate,
    read_snapshot,
    read_update,
)
from k2.exchanges.booksync import BookMalformed, Outcome, Reason, Verdict
from k2.exchanges.parse import load_json

from ..recordings import received_frames
from ..strategies import json_mutations, json_values

RECORDING = "BINANCE.ws.1.0"
EVENTS = {"NKNUSDT": 150, "LRCBTC": 15, "BLZETH": 10, "RUNEEUR": 2}


def depth_events() -> dict[str, list[DepthUpdate]]:
    """The recording's diff depth events per symbol, in the order received."""
    events: dict[str, list[DepthUpdate]] = defaultdict(list)
    for text in received_frames(RECORDING):
        if "@depth@100ms" in text.split(",", 1)[0]:
            read = read_update(load_json(text))
            assert isinstance(read, DepthUpdate)
            events[read.symbol].append(read)
    return events


def snapshot(last_update_id: int, bids: str = "[]", asks: str = "[]") -> DepthSnapshot:
    """A ``GET /api/v3/depth`` body of the documented shape."""
    body = f'{{"lastUpdateId":{last_update_id},"bids":{bids},"asks":{asks}}}'
    read = read_snapshot(load_json(body))
    assert isinstance(read, DepthSnapshot)
    return read


def outcomes(verdicts: list[Verdict]) -> list[Outcome]:
    return [verdict.outcome for verdict in verdicts]


def test_the_recorded_events_are_a_gap_free_chain() -> None:
    """Every event of the session starts at the update after the previous event's last one."""
    events = depth_events()
    assert {symbol: len(found) for symbol, found in events.items()} == EVENTS
    for found in events.values():
        assert all(nxt.first_id == prev.last_id + 1 for prev, nxt in pairwise(found))


@pytest.mark.parametrize("held", [0, 1, 3])
def test_a_snapshot_drops_what_it_holds_and_every_later_event_verifies(held: int) -> None:
    """Events before the snapshot are buffered; the snapshot ignores the first ``held`` of them
    (their ``u`` is at or below its ``lastUpdateId``), and every event after it verifies, the
    buffered ones and the live ones alike."""
    books = BinanceBooks()
    verified = 0
    for symbol, found in depth_events().items():
        cut = min(held, len(found) - 1)
        last = found[cut - 1].last_id if cut else found[0].first_id - 1
        buffered, live = found[: cut + 1], found[cut + 1 :]
        assert all(books.apply(event)[1].outcome is Outcome.BUFFERED for event in buffered)
        verdicts = books.book(symbol).apply_snapshot(snapshot(last))
        assert outcomes(verdicts) == [Outcome.VERIFIED] + [Outcome.IGNORED] * cut + [
            Outcome.VERIFIED
        ]
        assert all(books.apply(event)[1].outcome is Outcome.VERIFIED for event in live)
        verified += 1 + len(live)
    assert verified == sum(EVENTS.values()) - sum(min(held, n - 1) for n in EVENTS.values())


def test_a_snapshot_inside_an_event_is_bridged_by_it() -> None:
    """A ``lastUpdateId`` between an event's ``U`` and ``u`` is bridged: ``U <= lastUpdateId +
    1 <= u``; the event is applied whole (quantities are absolute)."""
    books = BinanceBooks()
    event = next(e for e in depth_events()["NKNUSDT"] if e.last_id > e.first_id)
    books.apply(event)
    verdicts = books.book("NKNUSDT").apply_snapshot(snapshot(event.first_id))
    assert outcomes(verdicts) == [Outcome.VERIFIED, Outcome.VERIFIED]
    assert books.book("NKNUSDT").update_id == event.last_id


def test_a_missing_event_is_a_gap_naming_the_ids_and_a_new_snapshot_resyncs() -> None:
    """Without one real event the next one starts too far: a gap whose expected id is the one
    after the book's and whose received id is the event's ``U``; events wait in the buffer
    until a new snapshot places them."""
    found = depth_events()["NKNUSDT"]
    books = BinanceBooks()
    book = books.book("NKNUSDT")
    book.apply_snapshot(snapshot(found[0].first_id - 1))
    for event in found[:10]:
        assert books.apply(event)[1].outcome is Outcome.VERIFIED
    _, gap = books.apply(found[11])
    assert (gap.reason, gap.expected, gap.received) == (
        Reason.SEQUENCE_GAP,
        found[9].last_id + 1,
        found[11].first_id,
    )
    assert book.broken_by == gap
    assert outcomes([books.apply(event)[1] for event in found[12:20]]) == [Outcome.BUFFERED] * 8
    verdicts = book.apply_snapshot(snapshot(found[13].last_id))
    assert outcomes(verdicts) == [Outcome.VERIFIED] + [Outcome.IGNORED] * 3 + [Outcome.VERIFIED] * 6
    assert book.synced


def test_a_snapshot_older_than_the_buffer_is_refused() -> None:
    """A ``lastUpdateId`` below the first buffered event's ``U`` - 1 leaves a hole: the book
    stays unverified and keeps its buffer for a newer snapshot."""
    found = depth_events()["LRCBTC"]
    books = BinanceBooks()
    for event in found:
        books.apply(event)
    book = books.book("LRCBTC")
    (too_old,) = book.apply_snapshot(snapshot(found[0].first_id - 2))
    assert (too_old.reason, too_old.expected, too_old.received) == (
        Reason.SNAPSHOT_TOO_OLD,
        found[0].first_id - 1,
        found[0].first_id,
    )
    assert len(book.buffer) == len(found)
    assert outcomes(book.apply_snapshot(snapshot(found[0].first_id - 1)))[-1] is Outcome.VERIFIED


def test_levels_are_absolute_and_removing_an_absent_level_is_normal() -> None:
    """An event sets quantities (0 removes, even a level the book lacks), in the order sent."""
    books = BinanceBooks()
    book = books.book("BNBBTC")
    book.apply_snapshot(snapshot(156, bids='[["0.0024","10"]]', asks='[["0.0026","100"]]'))
    event = load_json(
        '{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,'
        '"b":[["0.0024","0"],["0.0023","5"],["0.0023","7"]],"a":[["0.0030","0"]]}'
    )
    _, verdict = books.apply(read_update(event))
    assert verdict.outcome is Outcome.VERIFIED
    assert [(level.price, level.size) for level in book.book.bids] == [
        (Decimal("0.0023"), Decimal(7))
    ]
    assert book.book.best_ask() is not None


@pytest.mark.parametrize(
    "text",
    [
        '{"e":"depthUpdate","E":1,"s":"BNBBTC","U":5,"u":4,"b":[],"a":[]}',  # U above u
        '{"e":"depthUpdate","E":1,"s":"BNBBTC","U":"5","u":6,"b":[],"a":[]}',
        '{"e":"depthUpdate","E":1,"s":"BNBBTC","U":5,"u":6,"b":[[0.1,"1"]],"a":[]}',
        '{"e":"depthUpdate","E":1,"s":"BNBBTC","U":5,"u":6,"b":[["0.1"]],"a":[]}',
        '{"e":"depthUpdate","E":1,"s":"BNBBTC","U":-1,"u":6,"b":[],"a":[]}',
    ],
)
def test_malformed_events_are_reported_with_their_symbol(text: str) -> None:
    """An event of the wrong shape is malformed, not raised, and unverifies its symbol."""
    read = read_update(load_json(text))
    assert isinstance(read, BookMalformed)
    symbol, verdict = BinanceBooks().apply(read)
    assert (symbol, verdict.reason) == ("BNBBTC", Reason.MALFORMED)


EVENT = json.loads(received_frames(RECORDING)[0])


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values, json_mutations(EVENT)))
def test_the_readers_never_raise(value: object) -> None:
    """Any JSON value, or a recorded event with one part changed, is read or reported."""
    read = read_update(value)
    assert isinstance(read, DepthUpdate | BookMalformed)
    BinanceBooks().apply(read)
    assert isinstance(read_snapshot(value), DepthSnapshot | BookMalformed)
