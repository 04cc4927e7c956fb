"""The fake exchange's ledger lines carry price, size, time and side."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from k2.simulator.replay import RecordedTrade
from tests.fakes.fakex import EXCHANGE


def cryptofeed_trades(at_us: int, frame: object) -> Iterator[RecordedTrade]:
    return iter(())


def ledger_trades(line: Mapping[str, Any]) -> Iterator[RecordedTrade]:
    fields = line["fields"]
    at_us = fields["t"]
    symbol, side, trade_id = line["symbol"], fields["side"], line.get("trade_id")
    yield RecordedTrade(
        EXCHANGE, symbol, at_us, fields["p"], fields["q"], at_us, side, "limit", trade_id
    )
