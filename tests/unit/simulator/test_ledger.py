"""The ledger: every emitted trade on its own line, readable while it is being written."""

from __future__ import annotations

from pathlib import Path

from k2.simulator.ledger import Ledger, LedgerEntry, delivered, read_ledger


def _entry(trade_id: int, **flags: bool) -> LedgerEntry:
    fields = {"e": "trade", "t": trade_id, "p": "1.00000000", "m": True}
    return LedgerEntry(
        "binance", "binance-trade", "BTCUSDT", trade_id, fields, 1, "binance#1", **flags
    )


def test_entries_read_back_exactly(tmp_path: Path) -> None:
    """Every trade the simulator wrote to its ledger reads back exactly, with its snapshot and
    garbled flags."""
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.open()
    entries = [_entry(1), _entry(2, snapshot=True), _entry(3, garbled=True)]
    ledger.write(entries)
    assert read_ledger(tmp_path / "ledger.jsonl") == entries
    assert ledger.count == 3
    ledger.close()


def test_a_line_being_written_is_not_read(tmp_path: Path) -> None:
    """A ledger line still being written is not read, so a test reading a live ledger never sees
    half a trade."""
    path = tmp_path / "ledger.jsonl"
    path.write_text(_entry(1).to_json() + "\n" + _entry(2).to_json()[:20])
    assert [entry.trade_id for entry in read_ledger(path)] == [1]


def test_a_missing_ledger_reads_empty(tmp_path: Path) -> None:
    """A ledger that does not exist yet reads as no trades."""
    assert read_ledger(tmp_path / "absent.jsonl") == []


def test_delivered_leaves_out_garbled_frames_and_duplicate_copies() -> None:
    """The trades a client should have received leave out those in garbled frames and the copies in
    duplicated ones."""
    entries = [_entry(1), _entry(2, garbled=True), _entry(3), _entry(3, duplicate=True)]
    assert [entry.trade_id for entry in delivered(entries)] == [1, 3]


def test_no_path_keeps_no_ledger(tmp_path: Path) -> None:
    """A simulator without a ledger path writes no ledger."""
    ledger = Ledger(None)
    ledger.open()
    ledger.write([_entry(1)])
    assert not ledger.enabled and ledger.count == 0
