"""Kraken's ``book`` channel on WebSocket v1 and v2, the exchange side (docs/book-protocols.md,
Kraken).

v2: ``{"method":"subscribe","params":{"channel":"book","symbol":[...],"depth":10,
"snapshot":true}}`` is acknowledged per symbol (with its depth); v1: ``{"event":"subscribe",
"pair":[...],"subscription":{"name":"book","depth":10}}`` gets a ``subscriptionStatus`` per pair
on channel ``book-<depth>``. A snapshot of the best ``depth`` levels a side follows (v2 unless
``snapshot`` is false), then an update for each step of the book that changes what the
subscription sees: the levels inside the window, the removal of a level deleted from it, and a
level that comes back into it from below; a level pushed out by an insert gets no removal (the
client cuts the book to its depth, as Kraken's clients must). Every update, and the v2 snapshot,
carries the CRC32 of the best 10 asks and bids (:func:`k2.exchanges.kraken.book.checksum`) over
the text sent: v2 writes prices with the pair's decimals and quantities with 8, as bare JSON
numbers; v1 writes the strings of its trades (prices padded to the pair's width) with each
level's time.

Faults (per connection): a dropped update is not sent (the next checksum no longer matches the
client's book); a wrong checksum is the true one plus one. Kraken's book has no sequence, so a
sequence jump does nothing here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from k2.exchanges.book import Level
from k2.exchanges.kraken import wire
from k2.exchanges.kraken.book import CHECKSUM_LEVELS, DEPTHS, checksum
from k2.simulator.book import BookStep, BookView, LevelText, printed_text
from k2.simulator.exchange import now_us
from k2.simulator.instruments import Instrument
from k2.simulator.ledger import BookLedgerEntry
from k2.simulator.session import BookChannel, BookSubscription, Session

CHANNEL = "book"
DEFAULT_DEPTH = DEPTHS[0]
_CRC_MODULUS = 2**32


@dataclass(eq=False, kw_only=True)
class KrakenBookSubscription(BookSubscription):
    """One pair's ``book`` subscription: ``symbol`` as the protocol spells it; ``channel_id``
    names its channel on v1."""

    symbol: str
    text: LevelText
    snapshot_id: int  # the book's update id when the view was taken
    channel_id: int = 0


def v2_text(instrument: Instrument) -> LevelText:
    """How v2 writes a pair's levels: the pair's price decimals, 8 quantity decimals."""
    return LevelText(instrument, instrument.price_decimals, instrument.qty_text_decimals)


def depth_error(depth: object) -> str | None:
    """Why a requested depth is refused, or None."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth not in DEPTHS:
        return f"Invalid depth {depth}: must be one of {', '.join(map(str, DEPTHS))}"
    return None


def view_checksum(view: BookView, text: LevelText) -> int:
    """Kraken's checksum of what the view holds, over the text it is sent as."""
    bids, asks = view.top(CHECKSUM_LEVELS)
    return checksum(_levels(text.levels(bids)), _levels(text.levels(asks)))


def _levels(texts: list[tuple[str, str]]) -> list[Level]:
    return [Level(Decimal(price), Decimal(size), price, size) for price, size in texts]


class KrakenMessage(NamedTuple):
    """What one ``book`` message says, whichever version writes it."""

    sub: KrakenBookSubscription
    snapshot: bool
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    checksum: int
    time_us: int


def render_v2(message: KrakenMessage) -> str:
    """A v2 ``book`` message."""
    stamp = wire.format_timestamp_v2(message.time_us)
    kind: wire.V2TradeType = "snapshot" if message.snapshot else "update"
    return wire.render_v2_book(
        message.sub.symbol, kind, message.bids, message.asks, message.checksum, stamp
    )


def render_v1(message: KrakenMessage) -> str:
    """A v1 ``book-<depth>`` frame (the snapshot without a checksum)."""
    sub = message.sub
    return wire.render_v1_book(
        sub.channel_id, sub.symbol, sub.view.depth or DEFAULT_DEPTH, message.bids, message.asks,
        wire.format_time_v1(message.time_us), None if message.snapshot else message.checksum,
    )  # fmt: skip


class KrakenBooks(BookChannel[KrakenBookSubscription]):
    """The ``book`` subscriptions of one connection, by pair as its protocol spells it; a
    version says how it writes levels (``text``) and messages (``render``)."""

    def __init__(
        self,
        session: Session,
        protocol: str,
        text: Callable[[Instrument], LevelText],
        render: Callable[[KrakenMessage], str],
    ) -> None:
        super().__init__(session, protocol)
        self.text = text
        self.render = render

    def subscribe(
        self, symbol: str, instrument: Instrument, depth: int, channel_id: int = 0
    ) -> KrakenBookSubscription:
        """Start following ``symbol``'s book at ``depth`` (the snapshot is sent separately)."""
        book = self.session.market.book(instrument.symbol)
        sub = self.subs[symbol] = KrakenBookSubscription(
            instrument.symbol,
            book.step_end,
            book.view(depth),
            symbol=symbol,
            text=self.text(instrument),
            snapshot_id=book.update_id,
            channel_id=channel_id,
            active=False,
        )
        return sub

    async def send_snapshot(self, sub: KrakenBookSubscription) -> None:
        """The subscription's snapshot: the best ``depth`` levels of each side."""
        bids, asks = sub.view.top()
        bid_text, ask_text = sub.text.levels(bids), sub.text.levels(asks)
        value = view_checksum(sub.view, sub.text)
        frame = self.render(KrakenMessage(sub, True, bid_text, ask_text, value, now_us()))
        await self.session.emit_book(
            frame, self._entry(sub, "snapshot", sub.snapshot_id, bid_text, ask_text, value, None)
        )

    async def send_steps(self, sub: KrakenBookSubscription, steps: list[BookStep]) -> bool:
        """One ``update`` per step that changes what the subscription sees."""
        session = self.session
        for step in steps:
            changes = sub.view.advance((step,))
            if not changes:
                continue
            bids, asks = sub.text.changes(changes)
            value = view_checksum(sub.view, sub.text)
            fault = session.book_fault()
            sent = (value + 1) % _CRC_MODULUS if fault == "bad_checksum" else value
            frame = None
            if fault != "dropped":
                frame = self.render(KrakenMessage(sub, False, bids, asks, sent, step.time_us))
            entry = self._entry(sub, "update", step.last_id, bids, asks, value, fault, step)
            await session.emit_book(frame, entry)
            if session.dropped:
                return False
        return True

    def _entry(
        self,
        sub: KrakenBookSubscription,
        kind: str,
        sequence: int,
        bids: list[tuple[str, str]],
        asks: list[tuple[str, str]],
        value: int,
        fault: str | None,
        step: BookStep | None = None,
    ) -> BookLedgerEntry:
        return BookLedgerEntry(
            self.session.exchange,
            self.protocol,
            sub.symbol,
            self.session.name,
            now_us(),
            kind,
            None if step is None else step.first_id,
            sequence,
            now_us() if step is None else step.time_us,
            tuple(bids),
            tuple(asks),
            value,
            fault,
        )


class KrakenV2Books(KrakenBooks):
    """The ``book`` subscriptions of one v2 connection, by v2 symbol."""

    def __init__(self, session: Session, protocol: str) -> None:
        super().__init__(session, protocol, v2_text, render_v2)


class KrakenV1Books(KrakenBooks):
    """The ``book`` subscriptions of one v1 connection, by v1 pair."""

    def __init__(self, session: Session, protocol: str) -> None:
        super().__init__(session, protocol, printed_text, render_v1)
