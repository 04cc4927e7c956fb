"""The book capture against a real broker, a real registry and the simulator: every book
message the simulator sent is in Kafka once, in order, with its levels as sent and K2's verdict;
a wrong checksum makes the book unverified until the resync's snapshot, and that interval is a
gap event of the book stream."""

from __future__ import annotations

import asyncio
import signal
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from k2.config import Settings
from k2.domain import micros_from_datetime
from k2.exchanges.binance.bookfeed import BinanceBookFeed
from k2.exchanges.binance.client import BinanceFeedOptions
from k2.exchanges.bookfeed import BookFeed
from k2.exchanges.bybit.bookfeed import BybitBookFeed
from k2.exchanges.bybit.client import BybitFeedOptions
from k2.exchanges.coinbase.bookfeed import CoinbaseBookFeed
from k2.exchanges.coinbase.client import CoinbaseFeedOptions
from k2.exchanges.kraken.bookfeed import KrakenBookFeed
from k2.exchanges.kraken.client import KrakenFeedOptions
from k2.exchanges.okx.bookfeed import OkxBookFeed
from k2.exchanges.okx.client import OkxFeedOptions
from k2.ingest.books import BookCapture
from k2.simulator.faults import FaultRule
from k2.simulator.ledger import BookLedgerEntry, read_book_ledger
from k2.simulator.server import Simulator
from k2.stack.manager import Stack
from k2.stack.ports import free_port
from k2.transport.topics import book_topic, gaps_topic, k2_topics, raw_topic
from tests.polling import Pending, wait_until_async
from tests.simulated import SimulatorThread, simulator_configs

from .test_ingest import Landed, ingest_env, lane, read_topic, start_ingest, wait_metric
from .test_simulator_binance import config as binance_config
from .test_simulator_kraken import config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SYMBOLS = ("BTC/USD", "ETH/USD")


def sent(entries: list[BookLedgerEntry], exchange: str) -> dict[str, list[BookLedgerEntry]]:
    """Each symbol's book messages the simulator sent (a dropped one was never sent)."""
    found: dict[str, list[BookLedgerEntry]] = defaultdict(list)
    for entry in entries:
        if entry.exchange == exchange and entry.fault != "dropped":
            found[entry.symbol].append(entry)
    return found


def capture_until_resyncs(
    private: Settings,
    exchange: str,
    feed: Callable[[Simulator], BookFeed],
    fault: FaultRule,
    simulator: Any,
    resyncs: int = 4,
) -> tuple[BookCapture, list[BookLedgerEntry]]:
    """Capture the simulator's books into the lane's topics until ``resyncs`` resyncs were
    asked for and 100 records delivered, then stop as SIGTERM would; the capture and the
    simulator's book ledger."""

    async def scenario() -> tuple[BookCapture, list[BookLedgerEntry]]:
        async with Simulator(simulator) as sim:
            sim.add_fault(fault)
            capture = BookCapture(
                feed(sim),
                private.kafka_config(),
                private.registry_config(),
                k2_topics(private.kafka, (), books=(exchange,)),
                private.kafka.topic_prefix,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(capture.run(stop))

            async def enough() -> bool | Pending:
                if task.done():
                    task.result()  # raises why the capture stopped
                asked, stats = capture.feed.book_stats["resyncs"], capture.stats()
                done = asked >= resyncs and stats["records:delivered"] >= 100
                return done or Pending(f"{asked} resyncs, {stats}")

            await wait_until_async(enough, 90, f"{resyncs} resyncs and 100 records delivered")
            stop.set()
            await asyncio.wait_for(task, 60)
            assert sim.ledger_path is not None
            return capture, read_book_ledger(sim.ledger_path)

    return asyncio.run(scenario())


def book_gaps(private: Settings, exchange: str) -> list[dict[str, Any]]:
    """The gap events of the book stream of ``exchange``."""
    return [
        landed.value
        for landed in read_topic(private, gaps_topic(private.kafka.topic_prefix))
        if landed.value["stream"] == "book" and landed.value["exchange"] == exchange
    ]


def by_symbol(landed: list[Landed]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in sorted(landed, key=lambda r: (r.partition, r.offset)):
        assert record.key == record.value["exchange_symbol"]
        found[record.key].append(record.value)
    return found


def test_every_kraken_book_message_lands_once_in_order_with_its_verdict(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Through wrong checksums every few dozen updates: each message sent is one record with
    its levels and checksum as sent; the records from a wrong checksum to the resync's snapshot
    are unverified (the first says checksum_mismatch with both numbers) and all others verified;
    each such interval is one gap event of the book stream from the break to the snapshot."""
    private = lane(settings, "kbooks")
    simulator = config(tmp_path, rate=200, kraken_symbols=("XBT/USD", "ETH/USD"))

    def feed(sim: Simulator) -> BookFeed:
        options = KrakenFeedOptions(
            symbols=SYMBOLS, ws_url=sim.urls.kraken_v2, rest_url=sim.urls.kraken_rest
        )
        return KrakenBookFeed(options)

    fault = FaultRule(protocol="kraken-v2", book_checksum_every=40)
    capture, ledger = capture_until_resyncs(private, "kraken", feed, fault, simulator)
    prefix = private.kafka.topic_prefix
    expected = sent(ledger, "kraken")
    landed = by_symbol(read_topic(private, book_topic("kraken", prefix)))
    assert set(landed) == set(SYMBOLS)
    breaks = 0
    for symbol, records in landed.items():
        entries = expected[symbol][: len(records)]
        assert len(records) >= 50 and len(entries) == len(records)
        verified = False
        for record, entry in zip(records, entries, strict=True):
            assert record["snapshot"] == (entry.type == "snapshot")
            assert [tuple(level.values()) for level in record["bids"]] == list(entry.bids)
            assert [tuple(level.values()) for level in record["asks"]] == list(entry.asks)
            wrong = entry.fault == "bad_checksum"
            assert record["checksum"] == (entry.checksum + 1) % 2**32 if wrong else entry.checksum
            if entry.type == "snapshot":
                verified = True
            elif wrong and verified:
                verified = False
                breaks += 1
                assert record["reason"] == "checksum_mismatch"
                assert (record["expected"], record["received"]) == (
                    record["checksum"],
                    entry.checksum,
                )
            assert record["verified"] is verified, (symbol, record["message_id"])
        assert len({r["message_id"] for r in records}) == len(records)
    gaps = book_gaps(private, "kraken")
    closed = [gap for gap in gaps if gap["detected_by"] == "checksum_mismatch"]
    assert len(closed) == breaks >= 4
    for gap in closed:
        assert gap["exchange"] == "kraken" and gap["from_us"] < gap["to_us"]
    assert capture.dead_lettered == 0


def test_every_binance_book_message_lands_once_with_its_final_verdict(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """Through updates the simulator leaves out: every snapshot and update sent is one record
    with its levels and update ids as sent, none twice and none missing up to the last one
    recorded; an update ids break is the one unverified record of its interval (the events after
    it are held for the REST snapshot, then recorded as ignored or verified, or as awaiting it
    when the capture stops first), and each break is one gap event of the book stream."""
    private = lane(settings, "bbooks")
    symbols = ("BTCUSDT", "ETHUSDT")
    simulator = binance_config(tmp_path, rate=200, binance_symbols=symbols)

    def feed(sim: Simulator) -> BookFeed:
        options = BinanceFeedOptions(
            symbols=symbols, ws_url=sim.urls.binance_ws, rest_url=sim.urls.binance_rest,
            book_depth=100,
        )  # fmt: skip
        return BinanceBookFeed(options)

    fault = FaultRule(protocol="binance", book_drop_every=50)
    capture, ledger = capture_until_resyncs(private, "binance", feed, fault, simulator)
    expected = sent(ledger, "binance")
    landed = by_symbol(read_topic(private, book_topic("binance", private.kafka.topic_prefix)))
    assert set(landed) == set(symbols)
    breaks = 0
    for symbol, records in landed.items():
        entries = {
            (entry.type == "snapshot", entry.sequence, entry.first_sequence): entry
            for entry in expected[symbol]
        }
        found = set()
        for record in records:
            key = (record["snapshot"], record["sequence"], record["sequence_from"])
            assert key not in found, f"{symbol} recorded twice: {key}"
            found.add(key)
            entry = entries[key]
            assert [tuple(level.values()) for level in record["bids"]] == list(entry.bids)
            assert [tuple(level.values()) for level in record["asks"]] == list(entry.asks)
            assert record["outcome"] in ("verified", "ignored", "unverified"), record
            if record["outcome"] == "unverified" and record["reason"] == "sequence_gap":
                assert record["received"] > record["expected"]
                breaks += 1
            elif record["outcome"] == "unverified":  # held when the capture stopped
                assert record["reason"] == "awaiting_snapshot", record
            assert record["connection_id"] == "rest" if record["snapshot"] else True
        last = max(record["sequence"] for record in records if not record["snapshot"])
        missing = [key for key in entries if not key[0] and key[1] <= last and key not in found]
        assert not missing, f"{symbol}: sent, not recorded: {missing[:5]}"
    gaps = [gap for gap in book_gaps(private, "binance") if gap["detected_by"] == "sequence_gap"]
    assert len(gaps) == breaks >= 4
    assert capture.dead_lettered == 0


OTHERS: dict[
    str, tuple[tuple[str, ...], Callable[[Simulator, tuple[str, ...]], BookFeed], FaultRule]
] = {
    "okx": (
        ("BTC-USDT", "ETH-USDT"),
        lambda sim, symbols: OkxBookFeed(
            OkxFeedOptions(
                symbols=symbols, ws_url=sim.urls.okx_business, rest_url=sim.urls.okx_rest
            )
        ),
        FaultRule(protocol="okx", book_checksum_every=40),
    ),
    "bybit": (
        ("BTCUSDT", "ETHUSDT"),
        lambda sim, symbols: BybitBookFeed(
            BybitFeedOptions(
                symbols=symbols, ws_url=sim.urls.bybit_spot, rest_url=sim.urls.bybit_rest
            )
        ),
        FaultRule(protocol="bybit", book_jump_every=40),
    ),
    "coinbase": (
        ("BTC-USD", "ETH-USD"),
        lambda sim, symbols: CoinbaseBookFeed(
            CoinbaseFeedOptions(
                symbols=symbols, ws_url=sim.urls.coinbase_ws, rest_url=sim.urls.coinbase_rest
            )
        ),
        FaultRule(protocol="coinbase", book_drop_every=60),
    ),
}
others_config = simulator_configs(rate=200, heartbeat_s=0.2)


@pytest.mark.parametrize("exchange", sorted(OTHERS))
def test_every_book_message_is_recorded_once_and_every_unverified_one_lies_in_a_gap(
    stack: Stack, settings: Settings, tmp_path: Path, exchange: str
) -> None:
    """Through the exchange's fault (a wrong checksum, a jump in the update ids, a lost message
    of the connection): each message sent is one record with its levels as sent, none missing
    before the last one recorded; every break is one gap event of the book stream, and every
    record that is not verified lies within a gap of its symbol."""
    symbols, make, fault = OTHERS[exchange]
    private = lane(settings, f"{exchange}books")
    simulator = others_config(tmp_path, **{f"{exchange}_symbols": symbols})
    capture, ledger = capture_until_resyncs(
        private, exchange, lambda sim: make(sim, symbols), fault, simulator
    )
    expected = sent(ledger, exchange)
    landed = by_symbol(read_topic(private, book_topic(exchange, private.kafka.topic_prefix)))
    assert set(landed) == set(symbols)
    gaps: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for gap in book_gaps(private, exchange):
        gaps[gap["exchange_symbol"]].append((_us(gap["from_us"]), _us(gap["to_us"])))
    breaks = sum(n for key, n in capture.feed.book_stats.items() if key.startswith("breaks:"))
    assert sum(len(found) for found in gaps.values()) == breaks >= 4
    for symbol, records in landed.items():
        matched = _match(records, expected[symbol])
        assert len(records) >= 50
        missing = [i for i in range(max(matched)) if i not in matched]
        assert not missing, f"{symbol}: sent, not recorded: ledger lines {missing[:5]}"
        assert len({r["message_id"] for r in records}) == len(records)
        for record in records:
            assert record["outcome"] in ("verified", "ignored", "unverified"), record
            if record["outcome"] == "unverified" and record["reason"] != "update_before_snapshot":
                at = _us(record["received_us"])
                covered = any(start <= at <= end for start, end in gaps[symbol])
                assert covered, (symbol, record["message_id"], record["reason"])
    assert capture.dead_lettered == 0


def _us(value: Any) -> int:
    """µs since the epoch of a timestamp the Avro reader decoded."""
    return micros_from_datetime(value) if isinstance(value, datetime) else int(value)


def _match(records: list[dict[str, Any]], entries: list[BookLedgerEntry]) -> set[int]:
    """The ledger lines the records are, each record the earliest unmatched line with the same
    kind and levels; fails on a record the simulator never sent."""
    lines: dict[Any, list[int]] = defaultdict(list)
    for index, entry in enumerate(entries):
        lines[(entry.type == "snapshot", entry.bids, entry.asks)].append(index)
    matched = set()
    for record in records:
        key = (
            record["snapshot"],
            tuple(tuple(level.values()) for level in record["bids"]),
            tuple(tuple(level.values()) for level in record["asks"]),
        )
        assert lines.get(key), f"a record the simulator never sent: {record['message_id']}"
        matched.add(lines[key].pop(0))
    return matched


def test_a_restart_is_a_book_gap_from_the_last_record_to_the_next_snapshot(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """The book of each symbol was not captured while the capture was stopped: the next run
    reads its last record back and reports the interval from it to that run's first snapshot as
    a gap event detected by ``restarted``; nothing else is a gap without a fault."""
    private = lane(settings, "restartbooks")
    simulator = config(tmp_path, rate=200, kraken_symbols=("XBT/USD", "ETH/USD"))

    def feed(sim: Simulator) -> BookFeed:
        options = KrakenFeedOptions(
            symbols=SYMBOLS, ws_url=sim.urls.kraken_v2, rest_url=sim.urls.kraken_rest
        )
        return KrakenBookFeed(options)

    quiet = FaultRule(protocol="kraken-v1")  # no fault on the v2 book the feed reads
    capture_until_resyncs(private, "kraken", feed, quiet, simulator, resyncs=0)
    first = by_symbol(read_topic(private, book_topic("kraken", private.kafka.topic_prefix)))
    assert book_gaps(private, "kraken") == []
    capture_until_resyncs(private, "kraken", feed, quiet, simulator, resyncs=0)
    both = by_symbol(read_topic(private, book_topic("kraken", private.kafka.topic_prefix)))
    gaps = book_gaps(private, "kraken")
    assert sorted(gap["exchange_symbol"] for gap in gaps) == sorted(SYMBOLS)
    for gap in gaps:
        symbol = gap["exchange_symbol"]
        last = first[symbol][-1]
        snapshot = both[symbol][len(first[symbol])]
        assert snapshot["snapshot"] and gap["detected_by"] == "restarted"
        assert (gap["from_us"], gap["to_us"]) == (last["received_us"], snapshot["received_us"])


def test_k2_ingest_with_books_on_captures_trades_and_books_in_one_process(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """``K2_INGEST__BINANCE__BOOKS=true k2 ingest --exchange binance``, the documented command:
    one process delivers the trades and the verified book of every symbol, serves the book
    metrics beside the trade ones, and stops on SIGTERM with nothing undelivered."""
    symbols = ("BTCUSDT", "ETHUSDT")
    private = lane(settings, "processbooks", binance={"symbols": symbols})
    port = free_port()
    log = tmp_path / "ingest.log"
    with SimulatorThread(binance_config(tmp_path, rate=200, binance_symbols=symbols)) as sim:
        env = {
            **ingest_env(private, sim),
            "K2_INGEST__BINANCE__BOOKS": "true",
            "K2_INGEST__BINANCE__BOOK_DEPTH": "100",
        }
        ingest = start_ingest(env, log, port)
        try:
            wait_metric(port, "k2_ingest_book_records_total", 100, 90, "book records", log)
            wait_metric(port, "k2_ingest_trades_delivered_total", 100, 60, "trades", log)
            ingest.send_signal(signal.SIGTERM)
            assert ingest.wait(60) == 0, log.read_text()[-3000:]
        finally:
            if ingest.poll() is None:
                ingest.kill()
    prefix = private.kafka.topic_prefix
    books = by_symbol(read_topic(private, book_topic("binance", prefix)))
    assert set(books) == set(symbols)
    for symbol, records in books.items():
        assert records[0]["snapshot"] and records[0]["connection_id"] == "rest", symbol
        assert any(r["outcome"] == "verified" and not r["snapshot"] for r in records), symbol
        assert len({r["message_id"] for r in records}) == len(records)
    trades = read_topic(private, raw_topic("binance", prefix))
    assert {t.key for t in trades} == set(symbols)
    assert book_gaps(private, "binance") == []
    text = log.read_text()
    assert '"event": "ingest_metrics_serving"' in text and '"level": "error"' not in text
