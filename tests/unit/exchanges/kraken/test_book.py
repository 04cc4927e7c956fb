"""Kraken's book checksum holds on every update of a real recorded session (v1, and the same
frames written as v2), fails on a one-digit change, and depends on the text as sent."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from k2.exchanges.book import Level, Side
from k2.exchanges.booksync import BookMalformed, Outcome, Reason
from k2.exchanges.kraken.book import (
    CHECKSUM_LEVELS,
    KrakenBookMessage,
    KrakenBooks,
    checksum,
    checksum_text,
    read_v1,
    read_v2,
)
from k2.exchanges.parse import load_json

from ..recordings import received_frames
from ..strategies import json_mutations, json_values

RECORDING = "KRAKEN.ws.50.0"
PAIRS = 10
UPDATES = 4269  # counted in the file: every update frame carries "c"


def book_frames() -> list[object]:
    """The recording's book frames (arrays), decoded."""
    return [load_json(text) for text in received_book_texts()]


def received_book_texts() -> list[str]:
    """The recording's book frames as received (text)."""
    return [text for text in received_frames(RECORDING) if text.startswith("[")]


def flip_last_digit(text: str) -> str:
    return text[:-1] + str((int(text[-1]) + 1) % 10)


def test_every_update_of_every_pair_matches_the_checksum() -> None:
    """All 4,269 updates of the 10 pairs verify, each after its whole message is applied."""
    books = KrakenBooks()
    seen: Counter[tuple[str, bool]] = Counter()
    for frame in book_frames():
        read = read_v1(frame)
        assert isinstance(read, KrakenBookMessage)
        symbol, verdict = books.apply(read)
        assert verdict.outcome is Outcome.VERIFIED, (symbol, verdict)
        seen[read.symbol, read.snapshot] += 1
    assert sum(count for (_, snapshot), count in seen.items() if not snapshot) == UPDATES
    assert sum(count for (_, snapshot), count in seen.items() if snapshot) == PAIRS
    assert len(books.books) == PAIRS
    assert all(book.synced and book.book.depth == 1000 for book in books.books.values())


def test_the_documentation_example_gives_its_checksum() -> None:
    """Kraken's checksum guide: ten asks from 0.05005 up and ten bids from 0.05000 down, each of
    0.00000500, give the string it shows and the checksum 974947235."""
    asks = [f"0.050{n:02d}" for n in range(5, 55, 5)]
    bids = ["0.05000", "0.04995", "0.04990", "0.04980", "0.04975"]
    bids += ["0.04970", "0.04965", "0.04960", "0.04955", "0.04950"]
    size = "0.00000500"
    ask_levels = [Level(Decimal(price), Decimal(size), price, size) for price in asks]
    bid_levels = [Level(Decimal(price), Decimal(size), price, size) for price in bids]
    assert checksum_text(bid_levels, ask_levels) == (
        "5005500501050050155005020500502550050305005035500504050050455005050500"
        "5000500499550049905004980500497550049705004965500496050049555004950500"
    )
    assert checksum(bid_levels, ask_levels) == 974947235


def test_a_one_digit_change_of_any_checksummed_level_fails() -> None:
    """At every update, changing one digit of a top-10 level's price, or of its size, gives
    another checksum: the rule sees every digit of every level it covers."""
    books = KrakenBooks()
    flipped = 0
    for number, frame in enumerate(book_frames()):
        read = read_v1(frame)
        assert isinstance(read, KrakenBookMessage)
        symbol, _ = books.apply(read)
        if read.checksum is None:
            continue
        bids, asks = books.book(read.symbol).book.top(CHECKSUM_LEVELS)
        levels = asks + bids
        index = number % len(levels)
        target = levels[index]
        for changed in (
            target._replace(price_text=flip_last_digit(target.price_text)),
            target._replace(size_text=flip_last_digit(target.size_text)),
        ):
            altered = [*levels[:index], changed, *levels[index + 1 :]]
            assert checksum(altered[len(asks) :], altered[: len(asks)]) != read.checksum, symbol
            flipped += 1
    assert flipped == 2 * UPDATES


def test_the_checksum_is_over_the_text_as_sent_not_the_normalised_number() -> None:
    """Writing the same levels without their trailing zeros (as a normalised Decimal would)
    breaks the checksum of every update whose top levels have such zeros."""
    books = KrakenBooks()
    broken = 0
    for frame in book_frames():
        read = read_v1(frame)
        assert isinstance(read, KrakenBookMessage)
        books.apply(read)
        if read.checksum is None:
            continue
        bids, asks = books.book(read.symbol).book.top(CHECKSUM_LEVELS)
        normalised = [_normalised(level) for level in bids], [_normalised(level) for level in asks]
        if normalised != (bids, asks):
            assert checksum(*normalised) != read.checksum
            broken += 1
    assert broken == UPDATES  # every pair's top levels carry trailing zeros in this session


def _normalised(level: Level) -> Level:
    return level._replace(
        price_text=format(level.price.normalize(), "f"),
        size_text=format(level.size.normalize(), "f"),
    )


def test_a_changed_level_in_a_frame_breaks_that_pair_until_its_next_snapshot() -> None:
    """One digit changed in one update frame: that update is a checksum mismatch naming both
    checksums, the pair's later updates are unverified awaiting a snapshot, and the other nine
    pairs stay verified."""
    frames = book_frames()
    target = _first_update_touching_the_top(frames)
    frame = json.loads(received_book_texts()[target])
    body = frame[1]
    side = "a" if "a" in body else "b"
    body[side][0][1] = flip_last_digit(body[side][0][1])
    frames[target] = load_json(json.dumps(frame))
    books = KrakenBooks()
    outcomes: Counter[tuple[bool, Outcome, Reason | None]] = Counter()
    broken_pair = frame[-1]
    for number, each in enumerate(frames):
        symbol, verdict = books.apply(read_v1(each))
        if number == target:
            assert verdict.reason is Reason.CHECKSUM_MISMATCH
            assert verdict.expected == int(body["c"])
            assert verdict.received != verdict.expected
        else:
            outcomes[symbol == broken_pair, verdict.outcome, verdict.reason] += 1
    assert set(outcomes) == {
        (False, Outcome.VERIFIED, None),
        (True, Outcome.VERIFIED, None),  # its updates before the change
        (True, Outcome.UNVERIFIED, Reason.AWAITING_SNAPSHOT),
    }
    assert books.book(broken_pair).broken_by is not None


def _first_update_touching_the_top(frames: list[object]) -> int:
    """The index of the first update whose first level lies in its side's top 10 after it."""
    books = KrakenBooks()
    for number, frame in enumerate(frames):
        read = read_v1(frame)
        assert isinstance(read, KrakenBookMessage)
        books.apply(read)
        if read.snapshot or not isinstance(frame, list) or len(frame) != 4:
            continue  # one object per update frame keeps the test's edit simple
        first = (read.asks or read.bids)[0]
        bids, asks = books.book(read.symbol).book.top(CHECKSUM_LEVELS)
        if first.size and first in (asks if read.asks else bids):
            return number
    raise AssertionError("no update touches the top levels")


def test_the_same_frames_written_as_v2_verify_too() -> None:
    """v2 sends prices as JSON numbers: written with the recorded text (``0.000022900``) and
    read with Decimal numbers, every update verifies with the same checksums."""
    books = KrakenBooks(depth=1000)
    verified = 0
    for frame in book_frames():
        read = read_v1(frame)
        assert isinstance(read, KrakenBookMessage)
        value = read.checksum
        if read.snapshot:  # v2 snapshots carry a checksum too
            value = checksum(*_sorted(read.bids, read.asks))
        text = _as_v2(read, value)
        got = read_v2(load_json(text))
        assert isinstance(got, KrakenBookMessage)
        assert got.bids == read.bids
        assert got.asks == read.asks
        _, verdict = books.apply(got)
        assert verdict.outcome is Outcome.VERIFIED
        verified += not read.snapshot
    assert verified == UPDATES


def _sorted(bids: tuple[Level, ...], asks: tuple[Level, ...]) -> tuple[list[Level], list[Level]]:
    return sorted(bids, key=lambda level: -level.price), sorted(asks, key=lambda level: level.price)


def _as_v2(message: KrakenBookMessage, value: int | None) -> str:
    def levels(side: tuple[Level, ...]) -> str:
        rows = (f'{{"price":{level.price_text},"qty":{level.size_text}}}' for level in side)
        return "[" + ",".join(rows) + "]"

    kind = "snapshot" if message.snapshot else "update"
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{message.symbol}",'
        f'"bids":{levels(message.bids)},"asks":{levels(message.asks)},"checksum":{value},'
        f'"timestamp":"2023-10-06T17:35:55.440295Z"}}]}}'
    )


def _message(snapshot: bool, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> str:
    """A v1 book-10 frame of XBT/USD whose checksum is the one the expected book gives."""
    body: dict[str, object] = {}
    key_b, key_a = ("bs", "as") if snapshot else ("b", "a")
    if bids:
        body[key_b] = [[price, size, "1618678133.366461"] for price, size in bids]
    if asks:
        body[key_a] = [[price, size, "1618678133.366461"] for price, size in asks]
    return json.dumps([42, body, "book-10", "XBT/USD"])


def _with_checksum(text: str, bids: list[Level], asks: list[Level]) -> object:
    frame = json.loads(text)
    frame[1]["c"] = str(checksum(bids, asks))
    return load_json(json.dumps(frame))


def _levels(rows: list[tuple[str, str]]) -> list[Level]:
    return [Level(Decimal(price), Decimal(size), price, size) for price, size in rows]


def test_the_book_is_cut_to_the_subscribed_depth_after_each_update() -> None:
    """At depth 10 a new best bid pushes the 10th out; when the best is then removed, the book
    holds 9 bids (the pushed-out level is gone) until Kraken republishes it (``"r"``), and every
    step verifies against the checksum of exactly that book."""
    bids = [(f"{100 - n}.0", "1.00000000") for n in range(10)]
    asks = [(f"{101 + n}.0", "2.00000000") for n in range(10)]
    books = KrakenBooks()
    _, verdict = books.apply(read_v1(load_json(_message(True, bids, asks))))
    assert verdict.outcome is Outcome.VERIFIED
    book = books.book("XBT/USD").book

    expected = _levels([("100.5", "3.00000000"), *bids[:9]])
    insert = _message(False, [("100.5", "3.00000000")], [])
    _, verdict = books.apply(read_v1(_with_checksum(insert, expected, _levels(asks))))
    assert verdict.outcome is Outcome.VERIFIED
    assert len(book.bids) == 10
    assert book.bids.get(Decimal("91.0")) is None

    expected = _levels(bids[:9])
    remove = _message(False, [("100.5", "0.00000000")], [])
    _, verdict = books.apply(read_v1(_with_checksum(remove, expected, _levels(asks))))
    assert verdict.outcome is Outcome.VERIFIED
    assert len(book.bids) == 9

    republish = json.loads(_message(False, [bids[9]], []))
    republish[1]["b"][0].append("r")
    _, verdict = books.apply(
        read_v1(_with_checksum(json.dumps(republish), _levels(bids), _levels(asks)))
    )
    assert verdict.outcome is Outcome.VERIFIED
    assert len(book.bids) == 10


def test_an_update_before_any_snapshot_is_not_applied() -> None:
    """Without a snapshot there is no book to verify: the update is unverified and ignored."""
    books = KrakenBooks()
    update = load_json('[42,{"b":[["100.0","1.0","1.0"]],"c":"1"},"book-10","XBT/USD"]')
    _, verdict = books.apply(read_v1(update))
    assert (verdict.outcome, verdict.reason) == (Outcome.UNVERIFIED, Reason.UPDATE_BEFORE_SNAPSHOT)
    assert len(books.book("XBT/USD").book.bids) == 0


def test_a_disconnection_leaves_every_book_awaiting_a_snapshot() -> None:
    """After the connection ends, updates are unverified until each pair's snapshot."""
    books = KrakenBooks()
    frames = book_frames()
    for frame in frames[:40]:
        books.apply(read_v1(frame))
    assert {verdict.reason for _, verdict in books.disconnected()} == {Reason.DISCONNECTED}
    symbol, verdict = books.apply(read_v1(frames[40]))
    assert verdict.reason is Reason.AWAITING_SNAPSHOT
    assert not books.book(str(symbol)).synced


def test_malformed_frames_are_reported_with_their_pair() -> None:
    """A frame that is not a book frame of the documented shape is malformed, never raised;
    when its pair is legible, that pair's book is unverified."""
    bad = [
        '[42,{"b":[["100.0",1.0,"1.0"]],"c":"1"},"book-10","XBT/USD"]',  # a number, not text
        '[42,{"b":[["100.0","1.0","1.0"]],"c":"x"},"book-10","XBT/USD"]',  # checksum not digits
        '[42,{"b":[["100.0","1.0","1.0"]]},"book-10","XBT/USD"]',  # an update without checksum
        '[42,{"b":[["100.0","1.0","1.0"]],"c":"4294967296"},"book-10","XBT/USD"]',  # > u32
        '[42,{"b":[["100.0","1.0","1.0"]],"c":"1"},"book-7","XBT/USD"]',  # no such depth
        '[42,{"as":[],"bs":[],"c":"1"},"book-10","XBT/USD"]',
        '[42,{"x":[]},"book-10","XBT/USD"]',
    ]
    books = KrakenBooks()
    for text in bad:
        read = read_v1(load_json(text))
        assert isinstance(read, BookMalformed), text
        assert read.symbol == "XBT/USD"
        symbol, verdict = books.apply(read)
        assert (symbol, verdict.reason) == ("XBT/USD", Reason.MALFORMED)
    assert read_v2(load_json('{"channel":"book","type":"update","data":[]}')) == BookMalformed(
        "book message data is not one object"
    )
    number = read_v2(load_json(_as_v2_update('"price":1e999999,"qty":1')))
    assert isinstance(number, BookMalformed)
    assert number.symbol == "XBT/USD"


def _as_v2_update(level: str) -> str:
    return (
        '{"channel":"book","type":"update","data":[{"symbol":"XBT/USD","bids":[{'
        + level
        + '}],"asks":[],"checksum":1,"timestamp":"2023-10-06T17:35:55.440295Z"}]}'
    )


FRAME_V1 = load_json('[42,{"a":[["100.0","1.0","1.0"]],"c":"7"},"book-10","XBT/USD"]')
FRAME_V2 = load_json(_as_v2_update('"price":100.0,"qty":1.0'))


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values, json_mutations(FRAME_V1), json_mutations(FRAME_V2)))
def test_the_readers_never_raise(value: object) -> None:
    """Any JSON value, or a book frame with one part changed, is read or reported."""
    for read in (read_v1(value), read_v2(value)):
        assert isinstance(read, KrakenBookMessage | BookMalformed)
        KrakenBooks().apply(read)


def test_sides_are_named_as_kraken_does() -> None:
    """v1 ``a``/``as`` are asks and ``b``/``bs`` bids; v2 ``asks``/``bids``."""
    read = read_v1(FRAME_V1)
    assert isinstance(read, KrakenBookMessage)
    assert (read.bids, [level.price for level in read.asks]) == ((), [Decimal("100.0")])
    books = KrakenBooks()
    books.apply(read_v1(load_json('[42,{"as":[["100.0","1.0","1.0"]],"bs":[]},"book-10","P/Q"]')))
    assert books.book("P/Q").book.best_ask() is not None
    assert books.book("P/Q").book.side(Side.BID).best() is None
