"""A book message's Kafka record keeps its levels as sent, the exchange's own numbers and K2's
verdict, under an id that names where it was received."""

from __future__ import annotations

from decimal import Decimal

from k2.exchanges.base import Envelope
from k2.exchanges.binance.bookfeed import BinanceBookFeed
from k2.exchanges.binance.client import BinanceFeedOptions
from k2.exchanges.book import Level
from k2.exchanges.booksync import BookUpdate, Outcome, Reason, Verdict
from k2.exchanges.kraken.bookfeed import KrakenBookFeed
from k2.exchanges.kraken.client import KrakenFeedOptions
from k2.ingest.books import book_record

ENVELOPE = Envelope(1_796_637_600_000_001, "conn-7", 42, "okx")


def level(price: str, size: str) -> Level:
    return Level(Decimal(price), Decimal(size), price, size)


def test_a_record_keeps_the_text_as_sent_and_the_verdict() -> None:
    """Trailing zeros stay, a removal keeps its size 0, numbers the exchange sent stay, and a
    break carries both numbers that disagree."""
    verdict = Verdict(Outcome.UNVERIFIED, Reason.SEQUENCE_GAP, 12, 10, 12, "10 due")
    update = BookUpdate(
        "okx",
        "BTC-USDT",
        False,
        (level("100.10", "0"), level("99.5", "2.000")),
        (),
        1_796_637_600_000_000,
        12,
        11,
        -12345,
        verdict,
        ENVELOPE,
    )
    record = book_record(update, "1.2.3")
    assert record["bids"] == [("100.10", "0"), ("99.5", "2.000")] and record["asks"] == []
    assert (record["sequence"], record["sequence_from"], record["checksum"]) == (12, 11, -12345)
    assert (record["verified"], record["outcome"], record["reason"]) == (
        False,
        "unverified",
        "sequence_gap",
    )
    assert (record["expected"], record["received"]) == (10, 12)
    assert record["message_id"] == "okx:BTC-USDT:conn-7:42"
    assert (record["received_us"], record["connection_id"], record["position"]) == (
        ENVELOPE.received_us,
        "conn-7",
        42,
    )


def test_each_part_of_a_frame_has_its_own_id() -> None:
    """A frame carrying several messages (Coinbase's products) gives each a distinct id."""
    verdict = Verdict(Outcome.VERIFIED, sequence=5)
    parts = [
        BookUpdate("coinbase", s, True, (), (), None, 5, None, None, verdict, ENVELOPE, part)
        for part, s in enumerate(("BTC-USD", "ETH-USD"))
    ]
    ids = [book_record(update, "1")["message_id"] for update in parts]
    assert ids == ["coinbase:BTC-USD:conn-7:42", "coinbase:ETH-USD:conn-7:42:1"]
    assert book_record(parts[0], "1")["verified"] is True


def test_a_record_says_the_depth_its_book_is_cut_to() -> None:
    """Kraken and Bybit send no removal for a level pushed out of the subscribed depth, so their
    books are cut to it and the record says so; the other exchanges' books are not cut."""
    verdict = Verdict(Outcome.VERIFIED)
    update = BookUpdate("kraken", "BTC/USD", True, (), (), None, None, None, 1, verdict, ENVELOPE)
    assert book_record(update, "1", depth=25)["depth"] == 25
    assert book_record(update, "1")["depth"] is None
    kraken = KrakenBookFeed(KrakenFeedOptions(symbols=("BTC/USD",), book_depth=25))
    binance = BinanceBookFeed(BinanceFeedOptions(symbols=("BTCUSDT",), book_depth=1000))
    assert (kraken.cut_depth, binance.cut_depth) == (25, None)
