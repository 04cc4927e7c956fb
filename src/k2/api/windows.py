"""Reading the first (or last) N rows of a long time window a piece at a time.

A page of 10,000 trades out of a day that holds 500,000 needs only the first hour or two of the
day, but a single ``ORDER BY ... LIMIT`` over the day reads the whole day. Here the window is
read in pieces, oldest first (or newest first), each four times longer than the one before; the
first is sized from the series' trade rate so that it usually holds every row asked for, and a
piece asks only for the rows still missing. The pieces are disjoint and in order, so their rows
in sequence are exactly the rows of one query over the whole window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pyarrow as pa

from k2.api.queries import Statement
from k2.api.reader import LakeReader, ResultStream, SymbolStat

_MIN_SPAN = timedelta(minutes=1)
_GROWTH = 4

Window = tuple[datetime, datetime]
MakeStatement = Callable[[Window, int], Statement]  # (piece, rows wanted) -> statement


def first_span(stat: SymbolStat | None, rows: int) -> timedelta | None:
    """A span that holds about twice ``rows`` trades at the series' average rate; None (read
    the window at once) when the rate is unknown."""
    if stat is None or stat.trade_count < 2:
        return None
    lasted = max(stat.last_trade - stat.first_trade, timedelta(seconds=1))
    return max(_MIN_SPAN, lasted * (2 * rows / stat.trade_count))


class PiecewiseResult:
    """The batches of ``make`` over successive pieces of ``window`` until ``wanted`` rows came;
    :attr:`schema` is known before iteration, as for one :class:`ResultStream`."""

    def __init__(
        self,
        reader: LakeReader,
        make: MakeStatement,
        window: Window,
        wanted: int,
        span: timedelta | None,
        newest_first: bool = False,
    ) -> None:
        self._reader, self._make, self._window = reader, make, window
        self._wanted, self._span, self._backward = wanted, span, newest_first
        self._piece = self._next_piece(None)
        self._current: ResultStream | None = reader.stream(make(self._piece, wanted))
        self.schema: pa.Schema = self._current.schema

    def _next_piece(self, previous: Window | None) -> Window:
        start, end = self._window
        span = self._span
        if span is None:
            return self._window
        if previous is not None:
            grown = (previous[1] - previous[0]) * _GROWTH
            span = grown
        if self._backward:
            top = previous[0] if previous is not None else end
            return max(start, top - span), top
        bottom = previous[1] if previous is not None else start
        return bottom, min(end, bottom + span)

    def _done(self, piece: Window) -> bool:
        return piece[0] <= self._window[0] if self._backward else piece[1] >= self._window[1]

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        got = 0
        try:
            while self._current is not None:
                for batch in self._current:
                    got += batch.num_rows
                    yield batch
                self._current = None
                if got >= self._wanted or self._done(self._piece):
                    return
                self._piece = self._next_piece(self._piece)
                self._current = self._reader.stream(self._make(self._piece, self._wanted - got))
        finally:
            self.close()

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
