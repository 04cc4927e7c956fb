"""Binance's trades in recordings: ``trade`` and ``aggTrade`` payloads, raw or wrapped in a
combined-stream frame, in cryptofeed recordings and in ledger lines."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from k2.exchanges.binance import EXCHANGE
from k2.simulator.replay import RecordedTrade


def _time(value: int) -> int:
    """Binance times are ms unless the connection asked for µs (16 digits)."""
    return value if value >= 10**14 else value * 1_000


def _payload(at_us: int, data: Mapping[str, Any]) -> Iterator[RecordedTrade]:
    kind = data.get("e")
    if kind not in ("trade", "aggTrade"):
        return
    side = "sell" if data["m"] else "buy"
    when = _time(data["T"])
    if kind == "trade":
        trade_id = data["t"]
        yield RecordedTrade(
            EXCHANGE,
            data["s"],
            at_us,
            data["p"],
            data["q"],
            when,
            side,
            "limit",
            trade_id,
            (trade_id, trade_id, trade_id),
        )
    else:
        agg = (data["a"], data["f"], data["l"])
        yield RecordedTrade(
            EXCHANGE, data["s"], at_us, data["p"], data["q"], when, side, "limit", data["f"], agg
        )


def cryptofeed_trades(at_us: int, frame: object) -> Iterator[RecordedTrade]:
    """The trade of a received payload (unwrapped from a combined frame); nothing for others."""
    if isinstance(frame, dict):
        yield from _payload(at_us, frame.get("data", frame))


def ledger_trades(line: Mapping[str, Any]) -> Iterator[RecordedTrade]:
    """The trade of one ledger line, paced by when it went out (else by its trade time)."""
    fields = line["fields"]
    yield from _payload(line.get("emit_us") or _time(fields["T"]), fields)
