"""Reconnect backoff is capped exponential with full jitter; control messages are rate limited."""

from __future__ import annotations

import pytest

from k2.transport.ws import Backoff, TokenBucket, backoff_delay


def test_backoff_ceiling_doubles_then_stays_at_the_cap() -> None:
    """The reconnect delay ceiling doubles with each attempt and never passes the cap."""
    ceilings = [backoff_delay(attempt, 0.5, 30.0, rand=lambda: 1.0) for attempt in range(10)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_backoff_is_fully_jittered_between_zero_and_the_ceiling() -> None:
    """Reconnect delays are spread between zero and the ceiling, so many clients never reconnect in
    waves."""
    assert backoff_delay(3, 0.5, 30.0, rand=lambda: 0.0) == 0.0
    assert backoff_delay(3, 0.5, 30.0, rand=lambda: 0.25) == 1.0
    delays = [backoff_delay(20, 0.5, 30.0) for _ in range(200)]
    assert all(0.0 <= delay <= 30.0 for delay in delays)
    assert len(set(delays)) > 100  # spread out, not waves


def test_huge_attempt_numbers_do_not_overflow() -> None:
    """However many attempts have failed, the reconnect delay stays at the cap."""
    assert backoff_delay(10_000, 0.5, 30.0, rand=lambda: 1.0) == 30.0


def test_backoff_counts_attempts_and_resets() -> None:
    """Each failed attempt lengthens the delay up to the cap, and a successful connection starts
    over from the base."""
    backoff = Backoff(1.0, 8.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    backoff.reset()
    assert backoff.next_delay() == 1.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_the_steady_rate() -> None:
    """Control messages may go out in a burst, then at the steady rate, and the bucket says how long
    to wait for the next."""
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=3.0, burst=3.0, clock=clock)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time() == pytest.approx(1 / 3)
    clock.now += 1 / 3
    assert bucket.try_acquire()
    assert not bucket.try_acquire()


def test_token_bucket_never_stores_more_than_its_burst() -> None:
    """A long quiet time never saves up more than one burst of control messages."""
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=3.0, burst=3.0, clock=clock)
    clock.now += 3600
    assert sum(bucket.try_acquire() for _ in range(10)) == 3


def test_token_bucket_keeps_under_binance_five_messages_per_second() -> None:
    """A client sending whenever allowed stays under Binance's limit of five control messages a
    second."""
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=3.0, burst=3.0, clock=clock)
    sent = 0
    for _ in range(1000):  # 10 s in 10 ms steps, sending whenever allowed
        clock.now += 0.01
        while bucket.try_acquire():
            sent += 1
    assert sent <= 3 + 3 * 10


def test_token_bucket_rejects_nonsense_settings() -> None:
    """A rate of zero is refused when the bucket is made."""
    with pytest.raises(ValueError, match="rate_per_s"):
        TokenBucket(rate_per_s=0.0, burst=1.0)
