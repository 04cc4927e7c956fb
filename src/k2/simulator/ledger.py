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
exact decimal text of the JSON numbers). ``trade_id`` is the venue id (Binance ``t``, aggregate
``a``, Kraken v2 ``trade_id``) and, for Kraken v1 which sends none, the id the simulator's history
holds for the trade, so REST history can be matched. ``snapshot`` marks trades re-sent in a
(re)subscribe snapshot, ``garbled`` trades in a frame deliberately corrupted (the client cannot
parse them), ``duplicate`` the second copy of a deliberately duplicated frame.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from k2.exchanges.base import FieldValue


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

    def write(self, entries: Iterable[LedgerEntry]) -> None:
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


def read_ledger(path: Path) -> list[LedgerEntry]:
    """Every complete entry of a ledger file, in emit order.

    Safe while the simulator writes: a last line without its newline (being written) is left
    out. A missing file reads as empty.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    complete, _, _ = text.rpartition("\n")
    return [_entry(json.loads(line)) for line in complete.splitlines() if line]


def delivered(entries: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    """The entries a client could parse once each: no garbled frames, no duplicate copies."""
    return [entry for entry in entries if not entry.garbled and not entry.duplicate]
