"""OKX v5's ``books`` channel on ``/ws/v5/public`` and ``GET /api/v5/market/books``, the exchange
side (docs/book-protocols.md, OKX).

A subscription gets its ``subscribe`` event, then a ``snapshot`` push of up to 400 levels a side
(``prevSeqId`` -1), then every 100 ms an ``update`` push with every level that changed since the
previous push; each push carries ``seqId`` (the book's update id, the same for every connection)
and the ``prevSeqId`` of the push before it on that subscription, and the signed CRC32 of the
best 25 bids and asks (:func:`k2.exchanges.okx.book.checksum`) over the text sent. OKX removes
the levels that leave its 400 explicitly; the simulated book holds fewer than that, so none
leaves. Levels are ``[price, size, "0", orders]`` without trailing zeros, as OKX prints them.
The REST book (``sz`` levels a side, 1 by default, at most 400) carries the ``seqId`` a client
places buffered pushes by, as OKX's procedure without the subscription snapshot asks.

Faults (per connection): a dropped push is not sent (the next ``prevSeqId`` is then not the
client's ``seqId``); a sequence jump sends a ``prevSeqId`` one above the true one; a wrong
checksum is off by one (never 0, which OKX uses for "no checksum"). A stale REST book (an exchange
fault) is the oldest state the book still knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from k2.exchanges.book import Level
from k2.exchanges.okx import wire
from k2.exchanges.okx.book import CHECKSUM_LEVELS, checksum
from k2.simulator.book import BookChange, BookStep, BookView, Levels, LevelText, SymbolBook
from k2.simulator.exchange import now_us
from k2.simulator.faults import FaultBook
from k2.simulator.instruments import Instrument
from k2.simulator.ledger import BookLedgerEntry, Ledger
from k2.simulator.session import BookChannel, BookSubscription

DEPTH = 400  # levels a side of the snapshot and of the book a subscription follows
PACE_S = 0.1
REST_PROTOCOL = "okx-rest"
_SIGNED = 2**31
_ORDERS = 9  # orders a level is made of, at most (a number derived from its size)


@dataclass(eq=False, kw_only=True)
class OkxBookSubscription(BookSubscription):
    """One instrument's ``books`` subscription; ``seq_id`` is the ``seqId`` of its last push."""

    inst_id: str
    text: LevelText
    seq_id: int


def book_text(instrument: Instrument) -> LevelText:
    """How OKX writes levels: the instrument's decimals, trailing zeros cut."""
    return LevelText(
        instrument, instrument.price_decimals, instrument.lot_decimals, wire.okx_decimal
    )


def _rows(text: LevelText, levels: list[tuple[int, int]]) -> list[wire.BookRow]:
    return [
        (price, size, "0", str(1 + lots % _ORDERS if lots else 0))
        for (price, size), (_, lots) in zip(text.levels(levels), levels, strict=True)
    ]


def _change_rows(
    text: LevelText, changes: list[BookChange]
) -> tuple[list[wire.BookRow], list[wire.BookRow]]:
    bids = _rows(text, [(change.price, change.lots) for change in changes if change.bid])
    asks = _rows(text, [(change.price, change.lots) for change in changes if not change.bid])
    return bids, asks


def view_checksum(view: BookView, text: LevelText) -> int:
    """OKX's checksum of what the view holds, over the text it is sent as."""
    bids, asks = view.top(CHECKSUM_LEVELS)
    return checksum(_levels(text.levels(bids)), _levels(text.levels(asks)))


def _levels(texts: list[tuple[str, str]]) -> list[Level]:
    return [Level(Decimal(price), Decimal(size), price, size) for price, size in texts]


def wrong(value: int) -> int:
    """A checksum that is not ``value``, still a signed 32-bit integer, and never 0."""
    changed = value + 1 if value < _SIGNED - 1 else value - 1
    return changed if changed else 2


class OkxPublicBooks(BookChannel[OkxBookSubscription]):
    """The ``books`` subscriptions of one public connection, by instrument."""

    def subscribe(self, instrument: Instrument) -> OkxBookSubscription | None:
        """Follow the instrument's book from now (None when it already is followed); its
        snapshot is sent separately."""
        if instrument.symbol in self.subs:
            return None
        book = self.session.market.book(instrument.symbol)
        sub = self.subs[instrument.symbol] = OkxBookSubscription(
            instrument.symbol,
            book.step_end,
            book.view(DEPTH, explicit_removals=True),
            PACE_S,
            inst_id=instrument.symbol,
            text=book_text(instrument),
            seq_id=book.update_id,
            active=False,
        )
        return sub

    async def send_snapshot(self, sub: OkxBookSubscription) -> None:
        """The subscription's snapshot push."""
        bid_levels, ask_levels = sub.view.top()
        bids, asks = _rows(sub.text, bid_levels), _rows(sub.text, ask_levels)
        value = view_checksum(sub.view, sub.text)
        now = now_us()
        frame = wire.render_books(
            "snapshot", sub.inst_id, bids, asks, now // 1000, value, sub.seq_id, -1
        )
        entry = self._entry(sub, "snapshot", None, sub.seq_id, now, bids, asks, value, None)
        await self.session.emit_book(frame, entry)

    async def send_steps(self, sub: OkxBookSubscription, steps: list[BookStep]) -> bool:
        """One ``update`` push with every change of ``steps``."""
        session = self.session
        changes = sub.view.advance(steps)
        if not changes:
            return True
        bids, asks = _change_rows(sub.text, changes)
        value = view_checksum(sub.view, sub.text)
        prev, seq = sub.seq_id, steps[-1].last_id
        sub.seq_id = seq
        fault = session.book_fault()
        frame = None
        if fault != "dropped":
            sent_prev = prev + 1 if fault == "sequence_jump" else prev
            sent_value = wrong(value) if fault == "bad_checksum" else value
            frame = wire.render_books(
                "update", sub.inst_id, bids, asks, steps[-1].time_us // 1000, sent_value,
                seq, sent_prev,
            )  # fmt: skip
        first, time_us = steps[0].first_id, steps[-1].time_us
        entry = self._entry(sub, "update", first, seq, time_us, bids, asks, value, fault)
        await session.emit_book(frame, entry)
        return not session.dropped

    def _entry(
        self,
        sub: OkxBookSubscription,
        kind: str,
        first: int | None,
        sequence: int,
        time_us: int,
        bids: list[wire.BookRow],
        asks: list[wire.BookRow],
        value: int,
        fault: str | None,
    ) -> BookLedgerEntry:
        return BookLedgerEntry(
            self.session.exchange,
            self.protocol,
            sub.inst_id,
            self.session.name,
            now_us(),
            kind,
            first,
            sequence,
            time_us,
            tuple((row[0], row[1]) for row in bids),
            tuple((row[0], row[1]) for row in asks),
            value,
            fault,
        )


def rest_book(
    book: SymbolBook, size: int, faults: FaultBook, ledger: Ledger, exchange: str
) -> dict[str, object]:
    """The data row of ``GET /api/v5/market/books``: the best ``size`` levels a side with the
    book's ``seqId``, or, when a stale-snapshot fault is due, the oldest state the book knows."""
    stale = faults.take_stale_snapshot(exchange)
    bid_side: Levels
    ask_side: Levels
    if stale:
        seq_id, bid_side, ask_side = book.stale()
    else:
        seq_id, bid_side, ask_side = book.update_id, book.bids, book.asks
    text = book_text(book.instrument)
    bids, asks = _rows(text, bid_side.top(size)), _rows(text, ask_side.top(size))
    now = now_us()
    if ledger.enabled:
        entry = BookLedgerEntry(
            exchange, REST_PROTOCOL, book.instrument.symbol, "rest", now, "snapshot", None,
            seq_id, now, tuple((r[0], r[1]) for r in bids), tuple((r[0], r[1]) for r in asks),
            None, "stale_snapshot" if stale else None,
        )  # fmt: skip
        ledger.write([entry])
    return wire.book_row(bids, asks, now // 1000, seqId=seq_id)
