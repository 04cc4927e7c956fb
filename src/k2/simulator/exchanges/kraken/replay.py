"""Kraken's trades in recordings: v1 ``trade`` frames of cryptofeed recordings, and ledger lines
of v1 (positional fields, no ids) and v2 (named fields with ``trade_id``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from k2.domain import micros_from_datetime
from k2.exchanges.kraken import EXCHANGE
from k2.simulator.replay import RecordedTrade, micros

_SIDES = {"b": "buy", "s": "sell", "buy": "buy", "sell": "sell"}
_ORDERS = {"l": "limit", "m": "market", "limit": "limit", "market": "market"}


def cryptofeed_trades(at_us: int, frame: object) -> Iterator[RecordedTrade]:
    """The trades of a v1 ``[channel_id, [rows], "trade", pair]`` frame; nothing for others."""
    if not isinstance(frame, list) or frame[-2:-1] != ["trade"]:
        return
    pair = frame[-1]
    for price, volume, when, side, order, *_ in frame[1]:
        yield RecordedTrade(
            EXCHANGE, pair, at_us, price, volume, micros(when), _SIDES[side], _ORDERS[order], None
        )


def ledger_trades(line: Mapping[str, Any]) -> Iterator[RecordedTrade]:
    """The trade of one ledger line: v2 fields when it has a ``trade_id``, else v1's."""
    fields = line["fields"]
    if line.get("protocol", "") == "kraken-v2" or "trade_id" in fields:
        when = micros_from_datetime(datetime.fromisoformat(fields["timestamp"]))
        yield RecordedTrade(
            EXCHANGE,
            fields["symbol"],
            line.get("emit_us") or when,
            str(fields["price"]),
            str(fields["qty"]),
            when,
            fields["side"],
            fields["ord_type"],
            fields["trade_id"],
        )
        return
    when = micros(fields["time"])
    yield RecordedTrade(
        EXCHANGE,
        line["symbol"],
        line.get("emit_us") or when,
        fields["price"],
        fields["volume"],
        when,
        _SIDES[fields["side"]],
        _ORDERS[fields["order_type"]],
        line.get("trade_id"),
    )
