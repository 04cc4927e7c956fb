"""Coinbase's trades in recordings: the Exchange feed's ``match``/``last_match`` messages of
cryptofeed recordings and ledger lines of ``market_trades`` trades (in both ``side`` is the
maker's, lower and upper case: the taker's is the other)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from k2.exchanges.coinbase import EXCHANGE
from k2.exchanges.coinbase.normalise import TAKER_OF_HISTORY_MAKER, TAKER_OF_MAKER
from k2.exchanges.values import rfc3339_micros
from k2.simulator.replay import RecordedTrade


def cryptofeed_trades(at_us: int, frame: object) -> Iterator[RecordedTrade]:
    """The trade of a ``match`` (or ``last_match``) message; nothing for other messages."""
    if not isinstance(frame, dict) or frame.get("type") not in ("match", "last_match"):
        return
    yield RecordedTrade(
        EXCHANGE,
        frame["product_id"],
        at_us,
        frame["price"],
        frame["size"],
        rfc3339_micros(frame["time"], "coinbase time"),
        TAKER_OF_HISTORY_MAKER[frame["side"]],
        "limit",
        int(frame["trade_id"]),
    )


def ledger_trades(line: Mapping[str, Any]) -> Iterator[RecordedTrade]:
    """The trade of one ledger line, paced by when it went out."""
    fields = line["fields"]
    when = rfc3339_micros(fields["time"], "coinbase time")
    yield RecordedTrade(
        EXCHANGE,
        fields["product_id"],
        line.get("emit_us") or when,
        str(fields["price"]),
        str(fields["size"]),
        when,
        TAKER_OF_MAKER[fields["side"]],
        "market",
        int(fields["trade_id"]),
    )
