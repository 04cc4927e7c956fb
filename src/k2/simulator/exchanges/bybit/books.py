"""Bybit v5's spot ``orderbook.<depth>.<symbol>`` topics, the exchange side (docs/book-protocols.md,
Bybit).

A subscription gets its ack, then a ``snapshot`` of the best ``depth`` levels a side, then, at
the topic's pace (10 ms at depth 1, 20 ms at 50, 100 ms at 200, 200 ms at 1000), a ``delta``
with every level that changed within the window since the previous message, each numbered
``u`` one above the one before; depth 1 sends snapshots only. Levels leaving the window are
deleted explicitly (size ``"0"``), so a client that does not cut the book still holds the
window. ``seq``, the cross sequence, is the book's update id (the same on every connection);
``u`` counts the messages of the subscription, from the book's step count at the snapshot.
Prices and sizes are written with the instrument's printed decimals, as the trades are.

Faults (per connection): a dropped delta is not sent (the next ``u`` skips one); a sequence
jump sends ``u`` one above its true value. Bybit's book has no checksum, so a wrong checksum
does nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass

from k2.exchanges.bybit import wire
from k2.simulator.book import BookStep, LevelText, printed_text
from k2.simulator.exchange import now_us
from k2.simulator.instruments import Instrument
from k2.simulator.ledger import BookLedgerEntry
from k2.simulator.session import BookChannel, BookSubscription

PACE_S = {1: 0.01, 50: 0.02, 200: 0.1, 1000: 0.2}  # seconds between messages, by depth


@dataclass(eq=False, kw_only=True)
class BybitBookTopic(BookSubscription):
    """One ``orderbook`` topic; ``update_id`` is the ``u`` of its last message."""

    topic: str
    text: LevelText
    update_id: int


class BybitBooks(BookChannel[BybitBookTopic]):
    """The ``orderbook`` topics of one connection, by topic."""

    def subscribe(self, topic: str, depth: int, instrument: Instrument) -> BybitBookTopic:
        """Follow a topic from now; its snapshot is sent separately."""
        book = self.session.market.book(instrument.symbol)
        sub = self.subs[topic] = BybitBookTopic(
            instrument.symbol,
            book.step_end,
            book.view(depth, explicit_removals=True),
            PACE_S[depth],
            topic=topic,
            text=printed_text(instrument),
            update_id=book.step_end,
            active=False,
        )
        return sub

    async def send_snapshot(self, sub: BybitBookTopic, cross_seq: int) -> None:
        """The topic's snapshot: the best ``depth`` levels a side."""
        bid_levels, ask_levels = sub.view.top()
        bids, asks = sub.text.levels(bid_levels), sub.text.levels(ask_levels)
        await self._send(sub, True, bids, asks, sub.update_id, cross_seq, None, now_us(), None)

    async def send_steps(self, sub: BybitBookTopic, steps: list[BookStep]) -> bool:
        """One message with every change of ``steps`` within the window."""
        session = self.session
        changes = sub.view.advance(steps)
        if not changes:
            return True
        sub.update_id += 1
        if sub.view.depth == 1:  # depth 1 sends the whole (one-level) book each time
            bid_levels, ask_levels = sub.view.top()
            bids, asks = sub.text.levels(bid_levels), sub.text.levels(ask_levels)
        else:
            bids, asks = sub.text.changes(changes)
        fault = session.book_fault()
        step = steps[-1]
        await self._send(
            sub, sub.view.depth == 1, bids, asks, sub.update_id, step.last_id, steps[0].first_id,
            step.time_us, fault,
        )  # fmt: skip
        return not session.dropped

    async def _send(
        self,
        sub: BybitBookTopic,
        snapshot: bool,
        bids: list[tuple[str, str]],
        asks: list[tuple[str, str]],
        update_id: int,
        cross_seq: int,
        first: int | None,
        time_us: int,
        fault: str | None,
    ) -> None:
        session = self.session
        frame = None
        if fault != "dropped":
            sent_id = update_id + 1 if fault == "sequence_jump" else update_id
            ms = time_us // 1000
            frame = wire.render_orderbook(
                sub.topic, snapshot, bids, asks, sent_id, cross_seq, ms, ms
            )
        entry = BookLedgerEntry(
            session.exchange, self.protocol, sub.listed, session.name, now_us(),
            "snapshot" if snapshot else "update", first, cross_seq, time_us, tuple(bids),
            tuple(asks), None, fault,
        )  # fmt: skip
        await session.emit_book(frame, entry)
