"""Bybit's trades in recordings: v5 ``publicTrade`` pushes and the legacy feed's ``trade``
frames of cryptofeed recordings, and ledger lines.

A recording's ids come from a counter shared with symbols it does not hold, so a replayed
trade is renumbered per symbol (1, 2, ... from the recording; a ledger line's own per-symbol
number from its shared id) and the simulator's shared ids are made from those numbers again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from k2.exchanges.bybit import EXCHANGE, wire
from k2.simulator.exchanges.bybit.ids import per_symbol
from k2.simulator.replay import RecordedTrade

_SIDES = {"Buy": "buy", "Sell": "sell"}


def _text(value: object) -> str:
    """A recorded number as decimal text (the legacy feed sent sizes as JSON numbers)."""
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return str(value)


def _v5(at_us: int, item: Mapping[str, Any], trade_id: int | None) -> RecordedTrade:
    when = int(item["T"]) * 1000
    side = _SIDES[item["S"]]
    return RecordedTrade(
        EXCHANGE, item["s"], at_us, item["p"], item["v"], when, side, "market", trade_id
    )


def _legacy(at_us: int, item: Mapping[str, Any]) -> RecordedTrade:
    when = int(item["trade_time_ms"]) * 1000
    side = _SIDES[item["side"]]
    return RecordedTrade(
        EXCHANGE, item["symbol"], at_us, _text(item["price"]), _text(item["size"]), when, side,
        "market", None,
    )  # fmt: skip


def cryptofeed_trades(at_us: int, frame: object) -> Iterator[RecordedTrade]:
    """The trades of a ``publicTrade.<SYMBOL>`` push or a legacy ``trade.<SYMBOL>`` frame."""
    if not isinstance(frame, dict) or not isinstance(frame.get("data"), list):
        return
    topic = str(frame.get("topic", ""))
    if wire.symbol_of(topic) is not None:
        yield from (_v5(at_us, item, None) for item in frame["data"])
    elif topic.startswith("trade."):
        yield from (_legacy(at_us, item) for item in frame["data"])


def ledger_trades(line: Mapping[str, Any]) -> Iterator[RecordedTrade]:
    """The trade of one ledger line, paced by when it went out (else by its trade time)."""
    fields = line["fields"]
    trade_id = str(fields["i"])
    number = per_symbol(int(trade_id)) if trade_id.isdigit() else None
    recorded = _v5(0, fields, number)
    at_us = line.get("emit_us") or recorded.time_us
    yield RecordedTrade(
        EXCHANGE, recorded.symbol, at_us, recorded.price, recorded.qty, recorded.time_us,
        recorded.side, recorded.ord_type, number,
    )  # fmt: skip
