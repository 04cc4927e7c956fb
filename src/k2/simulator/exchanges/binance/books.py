"""Binance spot's diff depth streams, the exchange side (docs/book-protocols.md, Binance).

``<symbol>@depth`` (a message a second) and ``<symbol>@depth@100ms`` (every 100 ms) send a
``depthUpdate`` with every level that changed since the previous one (its new quantity, 0
removes) and the update ids ``U``..``u`` those changes consumed; the stream has no snapshot, a
client takes one from ``GET /api/v3/depth`` (:func:`depth_snapshot`) and places it by its
``lastUpdateId``. Binance does not cut the book; neither does the stream. Prices and quantities
are written with 8 decimals, as Binance writes them.

Faults (per connection): a dropped event is not sent (the next ``U`` is then above the
client's id + 1); a sequence jump sends ``U`` and ``u`` one above their true values, with every
change kept. A stale snapshot (an exchange fault) is the oldest state the book still knows.
"""

from __future__ import annotations

from dataclasses import dataclass

from k2.exchanges.binance import wire
from k2.simulator.book import BookStep, LevelText, SymbolBook, printed_text
from k2.simulator.exchange import now_us
from k2.simulator.faults import FaultBook
from k2.simulator.instruments import Instrument
from k2.simulator.ledger import BookLedgerEntry, Ledger
from k2.simulator.session import BookChannel, BookSubscription

# Stream kinds with their pace in seconds.
DEPTH_KINDS = {"depth": 1.0, "depth@100ms": 0.1}
REST_PROTOCOL = "binance-rest"


@dataclass(eq=False, kw_only=True)
class DepthStream(BookSubscription):
    """One ``@depth`` stream of a connection."""

    name: str
    text: LevelText


class BinanceDepths(BookChannel[DepthStream]):
    """The depth streams of one connection, by stream name."""

    def add(self, name: str, kind: str, instrument: Instrument) -> None:
        """Start a stream: it sends the changes made from now on."""
        book = self.session.market.book(instrument.symbol)
        self.subs[name] = DepthStream(
            instrument.symbol,
            book.step_end,
            book.view(None),
            DEPTH_KINDS[kind],
            name=name,
            text=printed_text(instrument),
        )

    async def send_steps(
        self, stream: DepthStream, steps: list[BookStep], event_time: int, wrap: bool
    ) -> bool:
        """One event with every change of ``steps``."""
        session = self.session
        changes = stream.view.advance(steps)
        if not changes:
            return True
        bids, asks = stream.text.changes(changes)
        first, last = steps[0].first_id, steps[-1].last_id
        fault = session.book_fault()
        shift = 1 if fault == "sequence_jump" else 0
        frame = None
        if fault != "dropped":
            frame = wire.render_depth_update(
                stream.listed,
                first + shift,
                last + shift,
                event_time,
                bids,
                asks,
                stream.name if wrap else None,
            )
        entry = BookLedgerEntry(
            session.exchange,
            self.protocol,
            stream.listed,
            session.name,
            now_us(),
            "update",
            first,
            last,
            steps[-1].time_us,
            tuple(bids),
            tuple(asks),
            None,
            fault,
        )
        await session.emit_book(frame, entry)
        return not session.dropped


def depth_snapshot(
    book: SymbolBook, limit: int, faults: FaultBook, ledger: Ledger, exchange: str
) -> str:
    """The body of ``GET /api/v3/depth``: the best ``limit`` levels a side and the book's update
    id, or, when a stale-snapshot fault is due, the oldest state the book knows."""
    stale = faults.take_stale_snapshot(exchange)
    if stale:
        update_id, bid_levels, ask_levels = book.stale()
    else:
        update_id, bid_levels, ask_levels = book.update_id, book.bids, book.asks
    text = printed_text(book.instrument)
    bids, asks = text.levels(bid_levels.top(limit)), text.levels(ask_levels.top(limit))
    if ledger.enabled:
        ledger.write(
            [
                BookLedgerEntry(
                    exchange,
                    REST_PROTOCOL,
                    book.instrument.symbol,
                    "rest",
                    now_us(),
                    "snapshot",
                    None,
                    update_id,
                    now_us(),
                    tuple(bids),
                    tuple(asks),
                    None,
                    "stale_snapshot" if stale else None,
                )
            ]
        )
    return wire.render_depth_snapshot(update_id, bids, asks)
