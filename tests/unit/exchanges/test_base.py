"""Per-symbol trade id sequences: exact gap ranges, duplicates flagged, reconnects labelled;
per-symbol silence reported once per episode."""

from __future__ import annotations

from k2.exchanges.base import Gap, SequenceTracker, SilenceMonitor


def test_consecutive_ids_are_neither_gaps_nor_duplicates() -> None:
    """Consecutive trade ids are delivered as they come: no gap, no duplicate."""
    tracker = SequenceTracker("binance")
    verdicts = [tracker.observe("BTCUSDT", trade_id) for trade_id in (5, 6, 7)]
    assert all(not v.duplicate and v.gap is None for v in verdicts)
    assert tracker.last_seen("BTCUSDT") == 7


def test_a_jump_is_reported_as_the_exact_missing_range() -> None:
    """A jump in a symbol's trade ids is reported as exactly the missing range, once."""
    tracker = SequenceTracker("binance")
    tracker.observe("BTCUSDT", 100)
    verdict = tracker.observe("BTCUSDT", 104)
    assert verdict.gap == Gap("binance", "BTCUSDT", 101, 103, "sequence")
    assert tracker.observe("BTCUSDT", 105).gap is None


def test_ids_at_or_below_the_last_one_are_duplicates() -> None:
    """A trade id at or below the last one delivered is a duplicate, and the last delivered id does
    not move back."""
    tracker = SequenceTracker("kraken")
    for trade_id in (1, 2, 3):
        tracker.observe("BTC/USD", trade_id)
    assert tracker.observe("BTC/USD", 3).duplicate
    assert tracker.observe("BTC/USD", 1).duplicate
    assert tracker.last_seen("BTC/USD") == 3


def test_symbols_are_tracked_independently() -> None:
    """Each symbol's trade ids are followed on their own, so one symbol's ids never make a gap in
    another's."""
    tracker = SequenceTracker("kraken")
    tracker.observe("BTC/USD", 10)
    assert tracker.observe("ETH/USD", 3).gap is None
    assert tracker.observe("BTC/USD", 12).gap == Gap("kraken", "BTC/USD", 11, 11, "sequence")


def test_the_exchanges_newer_history_after_a_quiet_reconnect_is_a_gap_up_to_its_newest_id() -> None:
    """A restarted feed whose symbol stays quiet learns the exchange's newest id from its history:
    everything after the last delivered id is a gap, and the live copies of those trades are
    duplicates should they still come."""
    tracker = SequenceTracker("binance")
    tracker.seed("ETHUSDT", 263)
    assert tracker.advance("ETHUSDT", 264) == Gap("binance", "ETHUSDT", 264, 264, "history_check")
    assert tracker.observe("ETHUSDT", 264).duplicate
    assert tracker.observe("ETHUSDT", 265).gap is None


def test_a_history_no_newer_than_the_live_feed_is_no_gap() -> None:
    """The live feed got there first (or the symbol never traded): nothing to fill."""
    tracker = SequenceTracker("binance")
    tracker.observe("BTCUSDT", 10)
    assert tracker.advance("BTCUSDT", 10) is None
    assert tracker.advance("BTCUSDT", 7) is None
    assert tracker.advance("ETHUSDT", 99) is None  # no id seen: nothing to compare with
    assert tracker.last_seen("BTCUSDT") == 10


def test_after_a_reconnect_the_snapshot_replay_is_dropped_and_the_jump_is_a_reconnect_gap() -> None:
    """After a reconnect the trades the exchange replays are dropped as duplicates and a jump past
    them is a gap labelled reconnect."""
    tracker = SequenceTracker("kraken")
    for trade_id in range(1, 51):
        tracker.observe("BTC/USD", trade_id)
    tracker.mark_reconnect()
    snapshot = range(31, 81)  # the last 50 trades, 30 of them already seen
    verdicts = [tracker.observe("BTC/USD", trade_id) for trade_id in snapshot]
    assert sum(v.duplicate for v in verdicts) == 20
    assert [v.gap for v in verdicts if v.gap] == []  # 51 follows 50: the snapshot covered it
    tracker.mark_reconnect()
    assert tracker.observe("BTC/USD", 90).gap == Gap("kraken", "BTC/USD", 81, 89, "reconnect")
    assert tracker.observe("BTC/USD", 95).gap == Gap("kraken", "BTC/USD", 91, 94, "sequence")


def test_a_seeded_last_id_is_compared_like_a_reconnect() -> None:
    """After a restart the last id found in Kafka is the starting point: a replayed id is a
    duplicate and a jump is a reconnect gap."""
    tracker = SequenceTracker("binance")
    tracker.seed("BTCUSDT", 41)
    assert tracker.observe("BTCUSDT", 41).duplicate
    assert tracker.observe("BTCUSDT", 45).gap == Gap("binance", "BTCUSDT", 42, 44, "reconnect")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_silence_is_reported_once_per_episode_and_rearmed_by_activity() -> None:
    """A silent symbol is reported once per silence, and again only after it traded and fell silent
    anew."""
    clock = FakeClock()
    monitor = SilenceMonitor(10.0, clock=clock)
    monitor.watch(["BTCUSDT", "ETHUSDT"])
    clock.now = 5.0
    monitor.seen("BTCUSDT")
    assert monitor.due() == []
    clock.now = 11.0
    (eth,) = monitor.due()
    assert (eth.key, eth.ever_seen) == ("ETHUSDT", False)
    assert monitor.due() == []
    clock.now = 16.0
    (btc,) = monitor.due()
    assert (btc.key, btc.silent_s, btc.ever_seen) == ("BTCUSDT", 11.0, True)
    monitor.seen("BTCUSDT")
    clock.now = 27.0
    assert [s.key for s in monitor.due()] == ["BTCUSDT"]


def test_a_stream_that_never_sent_anything_has_its_own_deadline() -> None:
    """A symbol that never sent anything is reported after its own, shorter first deadline."""
    clock = FakeClock()
    monitor = SilenceMonitor(300.0, first_threshold_s=60.0, clock=clock)
    monitor.watch(["NOSUCHUSDT"])
    clock.now = 61.0
    (silence,) = monitor.due()
    assert (silence.key, silence.ever_seen) == ("NOSUCHUSDT", False)
