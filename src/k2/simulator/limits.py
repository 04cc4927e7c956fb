"""Request-rate accounting for the simulated REST endpoints."""

from __future__ import annotations

import time
from collections import deque


class MessageRate:
    """At most ``limit`` messages in any one-second window (0: unlimited)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._times: deque[float] = deque()

    def allow(self) -> bool:
        """Count one message; False when it is one too many this second (not counted)."""
        if not self.limit:
            return True
        now = time.monotonic()
        while self._times and now - self._times[0] >= 1.0:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


class WindowLimit:
    """A budget of ``limit`` units per sliding window of ``window_s`` seconds (0: unlimited).

    Binance counts request weight per minute, Kraken counts calls; both refuse a request once
    the budget is spent, and the budget comes back as the window slides.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._spent: deque[tuple[float, int]] = deque()
        self.used = 0

    def take(self, units: int) -> bool:
        """Spend ``units`` if the budget allows; False (nothing spent) when it does not."""
        now = time.monotonic()
        while self._spent and now - self._spent[0][0] >= self.window_s:
            self.used -= self._spent.popleft()[1]
        if self.limit and self.used + units > self.limit:
            return False
        self._spent.append((now, units))
        self.used += units
        return True

    def retry_after_s(self) -> int:
        """Whole seconds until the oldest spending leaves the window."""
        if not self._spent:
            return 0
        left = self._spent[0][0] + self.window_s - time.monotonic()
        return max(1, int(left) + 1)
