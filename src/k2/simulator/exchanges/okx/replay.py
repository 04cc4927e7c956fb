"""OKX's trades in recordings: ``trades``/``trades-all`` pushes of spot instruments in cryptofeed
recordings (swaps and futures are left out: K2 reads spot), and ledger lines."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from k2.exchanges.okx import EXCHANGE
from k2.exchanges.okx.normalise import split_symbol
from k2.simulator.replay import RecordedTrade

_CHANNELS = ("trades", "trades-all")


def _trade(at_us: int | None, row: Mapping[str, Any]) -> RecordedTrade:
    trade_id = int(row["tradeId"])
    when = int(row["ts"]) * 1000
    return RecordedTrade(
        EXCHANGE, row["instId"], at_us or when, row["px"], row["sz"], when, row["side"],
        "limit", trade_id, (trade_id, trade_id, trade_id),
    )  # fmt: skip


def cryptofeed_trades(at_us: int, frame: object) -> Iterator[RecordedTrade]:
    """The spot trades of a trade push; nothing for other frames."""
    if not isinstance(frame, dict) or not isinstance(frame.get("arg"), dict):
        return
    if frame["arg"].get("channel") not in _CHANNELS:
        return
    for row in frame.get("data") or ():
        if split_symbol(str(row.get("instId"))) is not None and row.get("count") in (None, "1"):
            yield _trade(at_us, row)


def ledger_trades(line: Mapping[str, Any]) -> Iterator[RecordedTrade]:
    """The trade of one ledger line, paced by when it went out (else by its trade time)."""
    yield _trade(line.get("emit_us"), line["fields"])
