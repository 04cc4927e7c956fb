"""OKX's book checksum holds on every push of a real recorded session and fails on a one-digit
change; the sequence ids follow OKX's documented rules (keep-alive, reset, gaps), and the REST
snapshot procedure places the updates buffered before it."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2.exchanges.book import Level
from k2.exchanges.booksync import BookMalformed, Outcome, Reason, Verdict
from k2.exchanges.okx.book import (
    CHECKSUM_LEVELS,
    OkxBookMessage,
    OkxBooks,
    checksum,
    checksum_text,
    read_push,
    read_rest_snapshot,
)
from k2.exchanges.parse import load_json

from ..recordings import received_frames
from ..strategies import json_mutations, json_values

RECORDING = "OKX.ws.1.0.books"
UPDATES = {"BTC-USDT": 97, "BTC-USD-220527": 98, "UNI-USD-SWAP": 92}


def book_pushes() -> list[object]:
    """The recording's ``books`` pushes (its subscribe events left out), decoded."""
    frames = [load_json(text) for text in received_frames(RECORDING)]
    return [frame for frame in frames if isinstance(frame, dict) and "data" in frame]


def flip_last_digit(text: str) -> str:
    return text[:-1] + str((int(text[-1]) + 1) % 10)


def test_every_push_of_every_instrument_matches_the_checksum() -> None:
    """The 3 snapshots and all 287 updates of spot, future and swap verify."""
    books = OkxBooks()
    updates: Counter[str] = Counter()
    for push in book_pushes():
        read = read_push(push)
        assert isinstance(read, OkxBookMessage)
        assert read.seq_id is None  # the 2022 format: the checksum is the only check
        symbol, verdicts = books.apply(read)
        assert [verdict.outcome for verdict in verdicts] == [Outcome.VERIFIED], symbol
        updates[read.symbol] += not read.snapshot
    assert updates == UPDATES
    assert all(book.verified_messages == UPDATES[name] + 1 for name, book in books.books.items())


def test_a_one_digit_change_of_any_checksummed_level_fails() -> None:
    """After every push, one digit changed in the price or the size of one of the best 25
    levels of either side gives another checksum."""
    books = OkxBooks()
    flipped = 0
    for number, push in enumerate(book_pushes()):
        read = read_push(push)
        assert isinstance(read, OkxBookMessage)
        books.apply(read)
        bids, asks = books.book(read.symbol).book.top(CHECKSUM_LEVELS)
        side = bids if number % 2 else asks
        index = number % len(side)
        for changed in (
            side[index]._replace(price_text=flip_last_digit(side[index].price_text)),
            side[index]._replace(size_text=flip_last_digit(side[index].size_text)),
        ):
            altered = [*side[:index], changed, *side[index + 1 :]]
            pair = (altered, asks) if side is bids else (bids, altered)
            assert checksum(*pair) != read.checksum
            flipped += 1
    assert flipped == 2 * 290


def test_a_changed_level_in_a_push_breaks_that_instrument_until_a_snapshot() -> None:
    """One digit changed in one update: a checksum mismatch naming OKX's checksum and the
    book's; the instrument's later updates wait for a snapshot, the others stay verified."""
    texts = [text for text in received_frames(RECORDING) if '"action"' in text]
    target = next(n for n, text in enumerate(texts) if '"action":"update"' in text)
    frame = json.loads(texts[target])
    row = frame["data"][0]
    side = "bids" if row["bids"] else "asks"
    row[side][0][1] = flip_last_digit(row[side][0][1])
    books = OkxBooks()
    seen: Counter[tuple[bool, Outcome]] = Counter()
    broken = frame["arg"]["instId"]
    for number, text in enumerate(texts):
        symbol, verdicts = books.apply(
            read_push(load_json(json.dumps(frame) if number == target else text))
        )
        if number == target:
            assert verdicts[0].reason is Reason.CHECKSUM_MISMATCH
            assert verdicts[0].expected == row["checksum"]
            continue
        seen.update((symbol == broken, verdict.outcome) for verdict in verdicts)
    assert set(seen) == {
        (False, Outcome.VERIFIED),
        (True, Outcome.VERIFIED),
        (True, Outcome.BUFFERED),
    }


# OKX's two worked examples: more levels than shown on both sides, and fewer bids than asks.
EXAMPLES = [
    ([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")]),
    ([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")]),
]


@pytest.mark.parametrize(
    ("example", "text"),
    [
        (EXAMPLES[0], "3366.1:7:3366.8:9:3366:6:3368:8"),
        (EXAMPLES[1], "3366.1:7:3366.8:9:3368:8:3372:8"),
    ],
)
def test_the_checksum_text_follows_the_documented_examples(
    example: tuple[list[tuple[str, str]], list[tuple[str, str]]], text: str
) -> None:
    """Levels alternate bid, ask; once a side runs out, the other's levels follow alone."""
    bids, asks = example
    assert checksum_text(_levels(bids), _levels(asks)) == text


def test_the_checksum_is_signed() -> None:
    """The checksum is the CRC32 read as a signed 32-bit integer."""
    (bids, asks), (fewer_bids, more_asks) = EXAMPLES
    assert checksum(_levels(bids), _levels(asks)) == -1881014294  # 2413953002 unsigned
    assert checksum(_levels(fewer_bids), _levels(more_asks)) == 831078360  # below 2**31


def _levels(rows: list[tuple[str, str]]) -> list[Level]:
    return [Level(Decimal(price), Decimal(size), price, size) for price, size in rows]


def push(
    action: str,
    seq: int | None,
    prev: int | None,
    bids: tuple[tuple[str, str], ...] = (),
    asks: tuple[tuple[str, str], ...] = (),
    value: int = 0,
) -> object:
    """A ``books`` push of the documented shape; checksum 0 as OKX sends once it is retired."""
    row: dict[str, object] = {
        "asks": [[price, size, "0", "1"] for price, size in asks],
        "bids": [[price, size, "0", "1"] for price, size in bids],
        "ts": "1597026383085",
        "checksum": value,
    }
    if seq is not None:
        row |= {"seqId": seq, "prevSeqId": prev}
    arg = {"channel": "books", "instId": "BTC-USDT"}
    return load_json(json.dumps({"arg": arg, "action": action, "data": [row]}))


def apply(books: OkxBooks, value: object) -> list[Verdict]:
    return books.apply(read_push(value))[1]


def outcomes(verdicts: list[Verdict]) -> list[tuple[Outcome, Reason | None]]:
    return [(verdict.outcome, verdict.reason) for verdict in verdicts]


VERIFIED = (Outcome.VERIFIED, None)


def test_the_documented_sequence_example_verifies_by_sequence_alone() -> None:
    """OKX's example: snapshot (-1, 10), update (10, 15), keep-alive with no levels (15, 15),
    reset after maintenance (15, 3), update (3, 5): all in sequence, without checksums."""
    books = OkxBooks()
    steps = [
        push("snapshot", 10, -1, bids=(("100", "1"),), asks=(("101", "1"),)),
        push("update", 15, 10, bids=(("99", "2"),)),
        push("update", 15, 15),
        push("update", 3, 15, asks=(("101", "0"),)),
        push("update", 5, 3, asks=(("102", "4"),)),
    ]
    assert [outcomes(apply(books, step)) for step in steps] == [[VERIFIED]] * 5
    book = books.book("BTC-USDT")
    assert book.seq_id == 5
    assert [level.price for level in book.book.asks] == [Decimal(102)]


def test_a_broken_chain_is_a_gap_naming_both_ids_and_later_updates_wait() -> None:
    """An update whose prevSeqId is not the book's seqId is a gap (expected, received); the
    updates after it are buffered for the next snapshot."""
    books = OkxBooks()
    apply(books, push("snapshot", 10, -1, bids=(("100", "1"),)))
    (gap,) = apply(books, push("update", 20, 12, bids=(("100", "2"),)))
    assert (gap.reason, gap.expected, gap.received, gap.sequence) == (
        Reason.SEQUENCE_GAP,
        10,
        12,
        20,
    )
    assert outcomes(apply(books, push("update", 25, 20))) == [(Outcome.BUFFERED, None)]
    verdicts = apply(books, push("snapshot", 22, -1, bids=(("100", "5"),)))
    assert outcomes(verdicts) == [VERIFIED, (Outcome.IGNORED, None), VERIFIED]


def test_the_rest_snapshot_procedure_places_the_buffered_updates() -> None:
    """Updates before the REST snapshot are buffered; those it holds (seqId at or below its
    own) are ignored, the first one after it bridges it (prevSeqId <= seqId < its seqId), and
    the rest follow."""
    books = OkxBooks()
    buffered = [
        push("update", 105, 100, bids=(("99", "1"),)),
        push("update", 112, 105, bids=(("98", "1"),)),
        push("update", 120, 112, bids=(("97", "1"),)),
        push("update", 121, 120, bids=(("98", "0"),)),
    ]
    assert [outcomes(apply(books, each)) for each in buffered] == [[(Outcome.BUFFERED, None)]] * 4
    row = {"asks": [["101", "3", "0", "1"]], "ts": "1", "seqId": 115}
    row["bids"] = [["100", "2", "0", "1"], ["98", "1", "0", "1"]]
    body = {"code": "0", "msg": "", "data": [row]}
    snapshot = read_rest_snapshot("BTC-USDT", load_json(json.dumps(body)))
    assert isinstance(snapshot, OkxBookMessage)
    _, verdicts = books.apply(snapshot)
    ignored = (Outcome.IGNORED, None)
    assert outcomes(verdicts) == [VERIFIED, ignored, ignored, VERIFIED, VERIFIED]
    book = books.book("BTC-USDT").book
    assert [level.price for level in book.bids] == [Decimal(100), Decimal(97)]


def test_a_snapshot_older_than_the_buffer_is_refused_and_a_newer_one_places_it() -> None:
    """A snapshot ending before the first buffered update it would need is too old: the
    buffer waits for the next snapshot."""
    books = OkxBooks()
    apply(books, push("update", 120, 112))
    (too_old,) = apply(books, push("snapshot", 105, -1))
    assert (too_old.reason, too_old.expected, too_old.received) == (
        Reason.SNAPSHOT_TOO_OLD,
        105,
        112,
    )
    assert not books.book("BTC-USDT").synced
    assert outcomes(apply(books, push("snapshot", 115, -1))) == [VERIFIED, VERIFIED]


def test_an_update_with_neither_checksum_nor_sequence_cannot_be_verified() -> None:
    """With the checksum retired (0) and no sequence ids, nothing can vouch for the book."""
    books = OkxBooks()
    apply(books, push("snapshot", None, None, bids=(("100", "1"),)))
    (verdict,) = apply(books, push("update", None, None, bids=(("100", "2"),)))
    assert verdict.reason is Reason.UNCHECKABLE


PUSH = '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":'


@pytest.mark.parametrize(
    "text",
    [
        PUSH + '"update","data":[{"asks":[[1.5,"1","0","1"]],"bids":[],"ts":"1","checksum":0}]}',
        PUSH + '"update","data":[{"asks":[],"bids":[],"ts":"1","checksum":4294967295}]}',
        PUSH + '"update","data":[{"asks":[],"bids":[],"ts":"1","seqId":"5"}]}',
        PUSH + '"partial","data":[{"asks":[],"bids":[],"ts":"1"}]}',
        PUSH + '"update","data":[]}',
    ],
)
def test_malformed_pushes_are_reported_with_their_instrument(text: str) -> None:
    """A push of the wrong shape is malformed, not raised, and unverifies its instrument."""
    read = read_push(load_json(text))
    assert isinstance(read, BookMalformed)
    assert read.symbol == "BTC-USDT"


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(json_values, json_mutations(push("update", 15, 10, bids=(("99", "2"),), value=-5)))
)
def test_the_reader_never_raises(value: object) -> None:
    """Any JSON value, or a push with one part changed, is read or reported."""
    read = read_push(value)
    assert isinstance(read, OkxBookMessage | BookMalformed)
    OkxBooks().apply(read)
    assert isinstance(read_rest_snapshot("BTC-USDT", value), OkxBookMessage | BookMalformed)
