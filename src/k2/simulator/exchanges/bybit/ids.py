"""Bybit's spot trade ids in the simulator: one counter shared by every symbol.

The market keeps one id sequence per symbol (every exchange's history is built the same way);
Bybit numbers every spot symbol's trades from one counter, so a symbol's ids rise with gaps
between them. The simulator shows the same: the id Bybit sends for the ``n``-th id of the
symbol at place ``p`` of the listing is ``n * STRIDE + p``, which is unique across symbols,
rises with ``n`` and jumps by at least ``STRIDE`` between a symbol's trades, and maps back to
``(n, p)`` for REST history and replay.
"""

from __future__ import annotations

from collections.abc import Iterable

STRIDE = 1000  # more places than the spot universe has symbols
_WRAP = (2**63 - 1) // STRIDE  # per-symbol ids beyond this wrap, so every id fits a long


class SharedIds:
    """The places of one market's symbols, and the shared ids of their trades."""

    def __init__(self, symbols: Iterable[str]) -> None:
        self._places: dict[str, int] = {}
        for symbol in symbols:
            self.place(symbol)

    def place(self, symbol: str) -> int:
        """The symbol's place (a new listing takes the next one)."""
        found = self._places.get(symbol)
        if found is None:
            found = self._places[symbol] = len(self._places) % STRIDE
        return found

    def shared(self, symbol: str, trade_id: int) -> int:
        """The id Bybit sends for the symbol's trade ``trade_id``."""
        return (trade_id % _WRAP) * STRIDE + self.place(symbol)

    def text(self, symbol: str, trade_id: int) -> str:
        """The same id as the decimal string Bybit writes."""
        return str(self.shared(symbol, trade_id))


def per_symbol(shared_id: int) -> int:
    """The symbol's own id of a shared id (the replay numbers a recording's trades with it)."""
    return shared_id // STRIDE
