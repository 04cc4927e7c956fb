"""The ledger: every trade the simulator sent to a client, as it sent it.

The ledger is the ground truth of the end-to-end tests (DESIGN.md §4): what arrived downstream is
compared with what was emitted. It is a JSONL file, one trade per line, appended as frames go out
and flushed after each frame so a test can read it while the simulator runs.

Line format (keys always present)::

    {"exchange": "kraken", "protocol": "kraken-v2", "symbol": "BTC/USD", "trade_id": 1234,
     "fields": {...}, "emit_us": 1718000000123456, "connection": "kraken-v2#3",
     "snapshot": false, "garbled": false, "duplicate": false}

``symbol`` is the symbol as the protocol spells it; ``fields`` are the trade's fields exactly as
sent, named like :attr:`k2.exchanges.base.RawTrade.fields` (Binance payload letters; Kraken v1
``price, volume, time, side, order_type, misc``; Kraken v2 names, with ``price``/``qty`` as the
exact decimal text of the JSON numbers). ``trade_id`` is the exchange id (Binance ``t``, aggregate
``a``, Kraken v2 ``trade_id``) and, for Kraken v1 which sends none, the id the simulator's history
holds for the trade, so REST history can be matched. ``snapshot`` marks trades re-sent in a
(re)subscribe snapshot, ``garbled`` trades in a frame deliberately corrupted (the client cannot
parse them), ``duplicate`` the second copy of a deliberately duplicated frame.

Book lines (``"kind": "book"``) record every order book message the simulator sent, or left out
(keys always present)::

    {"kind": "book", "exchange": "binance", "protocol": "binance", "symbol": "BTCUSDT",
     "connection": "binance#2", "emit_us": 1718000000123456, "type": "update",
     "first_sequence": 1000041435, "sequence": 1000041437, "time_us": 1718000000120000,
     "bids": [["79990.10000000", "0.50000000"]], "asks": [], "checksum": null, "fault": null}

``type`` is ``snapshot`` or ``update``; ``bids``/``asks`` the levels as sent (price and size
text; size 0 removes); ``sequence`` the exchange book's update id after the message and
``first_sequence`` the first id it covers, both true even when a fault altered what was sent;
``checksum`` the true checksum where the exchange sends one. ``fault`` names what was done to the
message: ``dropped`` (not sent: the client never saw these changes), ``bad_checksum``,
``sequence_jump``, or ``stale_snapshot`` (a REST snapshot, ``connection`` ``rest``, serving an
old state). Applying a connection's lines in order, dropped ones included, and cutting to the
subscription's depth gives the exchange's book as that subscription should hold it after each line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Protocol

from k2.exchanges.base import FieldValue

BOOK_KIND = "book"


class LedgerLine(Protocol):
    """Anything the ledger writes: one JSON object a line."""

    def to_json(self) -> str: ...


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One emitted trade (one ledger line)."""

    exchange: str
    protocol: str
    symbol: str
    trade_id: int | None
    fields: Mapping[str, FieldValue]
    emit_us: int
    connection: str
    snapshot: bool = False
    garbled: bool = False
    duplicate: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "exchange": self.exchange,
                "protocol": self.protocol,
                "symbol": self.symbol,
                "trade_id": self.trade_id,
                "fields": dict(self.fields),
                "emit_us": self.emit_us,
                "connection": self.connection,
                "snapshot": self.snapshot,
                "garbled": self.garbled,
                "duplicate": self.duplicate,
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True, slots=True)
class BookLedgerEntry:
    """One book message sent (or left out by a fault): one ledger line."""

    exchange: str
    protocol: str
    symbol: str
    connection: str
    emit_us: int
    type: str  # snapshot | update
    first_sequence: int | None
    sequence: int | None
    time_us: int
    bids: tuple[tuple[str, str], ...]
    asks: tuple[tuple[str, str], ...]
    checksum: int | None = None
    fault: str | None = None

    def to_json(self) -> str:
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        return json.dumps({"kind": BOOK_KIND, **values}, separators=(",", ":"))


@dataclass
class Ledger:
    """Appends entries to a JSONL file; ``path=None`` keeps no ledger (benchmarks).

    ``count`` is the number of entries written so far.
    """

    path: Path | None
    count: int = 0
    _file: IO[str] | None = field(default=None, repr=False)

    def open(self) -> None:
        if self.path is not None and self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def write(self, entries: Iterable[LedgerLine]) -> None:
        """Append ``entries`` and flush, so readers see whole lines at once."""
        if self._file is None:
            return
        lines = [entry.to_json() + "\n" for entry in entries]
        self._file.write("".join(lines))
        self._file.flush()
        self.count += len(lines)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _entry(data: Mapping[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        exchange=data["exchange"],
        protocol=data["protocol"],
        symbol=data["symbol"],
        trade_id=data["trade_id"],
        fields=data["fields"],
        emit_us=data["emit_us"],
        connection=data["connection"],
        snapshot=data.get("snapshot", False),
        garbled=data.get("garbled", False),
        duplicate=data.get("duplicate", False),
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a ledger file, decoded; a last line without its newline (being
    written) is left out, and a missing file reads as empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    complete, _, _ = text.rpartition("\n")
    return [json.loads(line) for line in complete.splitlines() if line]


def read_ledger(path: Path) -> list[LedgerEntry]:
    """Every complete trade entry of a ledger file, in emit order (book lines left out).

    Safe while the simulator writes.
    """
    return [_entry(data) for data in _lines(path) if data.get("kind") != BOOK_KIND]


def read_book_ledger(path: Path) -> list[BookLedgerEntry]:
    """Every complete book entry of a ledger file, in emit order. Safe while the simulator
    writes."""
    return [_book_entry(data) for data in _lines(path) if data.get("kind") == BOOK_KIND]


def _book_entry(data: Mapping[str, Any]) -> BookLedgerEntry:
    values = {item.name: data[item.name] for item in fields(BookLedgerEntry)}
    for side in ("bids", "asks"):
        values[side] = tuple((price, size) for price, size in values[side])
    return BookLedgerEntry(**values)


def delivered(entries: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    """The entries a client could parse once each: no garbled frames, no duplicate copies."""
    return [entry for entry in entries if not entry.garbled and not entry.duplicate]
