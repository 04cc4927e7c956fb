"""Coinbase Advanced Trade's ``level2`` channel, the exchange side (docs/book-protocols.md,
Coinbase).

After the ``subscriptions`` message, each product gets an ``l2_data`` message with a ``snapshot``
event (its whole book), then, at each market step, one with an ``update`` event listing every
level that changed (``new_quantity`` the level's new size, ``"0"`` removes it). Each message takes
the connection's next ``sequence_num``, the one counter of every channel on it (trades and
heartbeats too): that counter is the only check Coinbase offers. Prices and sizes are written
with the instrument's printed decimals, as its trades are.

Faults (per connection): a dropped message is not sent but still takes its ``sequence_num`` (the
connection lost it); a sequence jump skips a number before the message, with every change kept.
Coinbase's book has no checksum, so a wrong checksum does nothing here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from k2.exchanges.coinbase import wire
from k2.simulator.book import BookChange, BookStep, LevelText, printed_text
from k2.simulator.exchange import now_us
from k2.simulator.instruments import Instrument
from k2.simulator.ledger import BookLedgerEntry
from k2.simulator.session import BookChannel, BookSubscription, Session


@dataclass(eq=False, kw_only=True)
class CoinbaseBookSubscription(BookSubscription):
    """One product's ``level2`` subscription."""

    product_id: str
    text: LevelText


def _updates(text: LevelText, changes: list[BookChange]) -> list[tuple[str, str, str]]:
    sides = wire.L2_SIDES
    return [(sides[bid], *text.levels([(price, lots)])[0]) for bid, price, lots in changes]


class CoinbaseBooks(BookChannel[CoinbaseBookSubscription]):
    """The ``level2`` subscriptions of one connection, by product; ``number`` hands out the
    connection's next ``sequence_num``."""

    def __init__(self, session: Session, protocol: str, number: Callable[[], int]) -> None:
        super().__init__(session, protocol)
        self.number = number

    def subscribe(self, instrument: Instrument) -> CoinbaseBookSubscription | None:
        """Follow a product's book from now (None when it already is); its snapshot is sent
        separately."""
        if instrument.symbol in self.subs:
            return None
        book = self.session.market.book(instrument.symbol)
        sub = self.subs[instrument.symbol] = CoinbaseBookSubscription(
            instrument.symbol,
            book.step_end,
            book.view(None),
            product_id=instrument.symbol,
            text=printed_text(instrument),
            active=False,
        )
        return sub

    async def send_snapshot(self, sub: CoinbaseBookSubscription) -> None:
        """The product's whole book."""
        bids, asks = sub.view.top()
        changes = [BookChange(True, *level) for level in bids]
        changes += [BookChange(False, *level) for level in asks]
        update_id = self.session.market.books[sub.listed].update_id
        await self._send(sub, "snapshot", changes, None, update_id, now_us(), None)

    async def send_steps(self, sub: CoinbaseBookSubscription, steps: list[BookStep]) -> bool:
        """One ``update`` with every change of ``steps``."""
        changes = sub.view.advance(steps)
        if changes:
            fault = self.session.book_fault()
            step = steps[-1]
            await self._send(
                sub, "update", changes, steps[0].first_id, step.last_id, step.time_us, fault
            )
        return not self.session.dropped

    async def _send(
        self,
        sub: CoinbaseBookSubscription,
        kind: wire.EventType,
        changes: list[BookChange],
        first: int | None,
        update_id: int,
        time_us: int,
        fault: str | None,
    ) -> None:
        session = self.session
        updates = _updates(sub.text, changes)
        if fault == "sequence_jump":
            self.number()  # a number no message carries
        sequence_num = self.number()
        frame = None
        if fault != "dropped":
            stamp = wire.format_timestamp(time.time_ns())
            frame = wire.render_l2_data(
                sub.product_id, kind, updates, wire.format_time(time_us), sequence_num, stamp
            )
        bids = tuple((price, size) for side, price, size in updates if side == wire.L2_SIDES[True])
        asks = tuple((price, size) for side, price, size in updates if side != wire.L2_SIDES[True])
        entry = BookLedgerEntry(
            session.exchange, self.protocol, sub.product_id, session.name, now_us(),
            "snapshot" if kind == "snapshot" else "update", first, update_id, time_us, bids,
            asks, None, fault,
        )  # fmt: skip
        await session.emit_book(frame, entry)
