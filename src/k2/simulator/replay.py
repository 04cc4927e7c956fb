"""Replay of recorded sessions: the trades of a recording become the exchange's history again.

Two formats are read:

- **cryptofeed recordings** (``sample_data/`` of bmoscon/cryptofeed; see
  ``recordings/cryptofeed/NOTICE.md``): the first line is ``<url> <-> <connect time>``, a line
  ``<url> <- <time>: <json>`` is a frame the client sent, every other line is
  ``<receipt time>: <frame>``. The exchange is the one the URL names; its trade frames are taken
  (Kraken v1 ``trade``, Binance ``trade``/``aggTrade`` raw or combined), everything else (books,
  klines, acks) is skipped.
- **K2 JSONL**: one trade per line, ``{"exchange": ..., "protocol": ..., "symbol": ...,
  "fields": {...}}`` with the exchange's own field names and values exactly as sent, and
  optionally ``trade_id`` and ``emit_us`` (the time the trade went out, which paces the replay).
  This is the ledger's line format (:mod:`k2.simulator.ledger`), so any ledger can be replayed.

Each exchange reads its own frames and lines (``k2.simulator.exchanges.<exchange>.replay``).
Replayed trades keep their recorded price and size strings and trade times exactly. Ids: Binance
ids are kept (``t``; an ``aggTrade`` keeps ``a``/``f``/``l`` and becomes one trade with id ``f``);
Kraken v2 keeps ``trade_id``; Kraken v1 trades, which have none, are numbered 1, 2, ... per pair.
The replay is paced by the recorded receipt times divided by ``speed`` (0: everything at once).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from k2.errors import ConfigError, ExchangeError
from k2.exchanges import EXCHANGES
from k2.simulator import exchanges
from k2.simulator.exchange import Batch, ExchangeMarket
from k2.simulator.instruments import inferred_instrument
from k2.simulator.ledger import BOOK_KIND
from k2.simulator.market import AggTrade, SimTrade


@dataclass(frozen=True, slots=True)
class RecordedTrade:
    """One trade read from a recording, in the simulator's terms."""

    exchange: str
    symbol: str  # the exchange's WebSocket spelling (Kraken v1 name for Kraken)
    at_us: int  # when it was received or emitted: paces the replay
    price: str
    qty: str
    time_us: int
    side: str  # taker side
    ord_type: str
    trade_id: int | None
    agg: tuple[int, int, int] | None = None  # an aggregate trade's (id, first id, last id)


def micros(seconds: str) -> int:
    """Decimal seconds as text (a receipt time, Kraken v1's trade time) in exact microseconds."""
    return int(Decimal(seconds).scaleb(6))


def read_cryptofeed(path: Path) -> list[RecordedTrade]:
    """The trades of one cryptofeed recording, in the order they were received."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or " <-> " not in lines[0]:
        raise ConfigError(f"{path} is not a cryptofeed recording (no '<url> <-> <time>' line)")
    url = lines[0].split(" <-> ")[0]
    exchange = next((name for name in EXCHANGES if name in url), None)
    if exchange is None:
        raise ConfigError(f"{path}: cannot replay recordings of {url}")
    reader = exchanges.replay(exchange)
    trades: list[RecordedTrade] = []
    for line in lines[1:]:
        if not line.strip() or " <- " in line.split(": ", 1)[0]:
            continue
        stamp, _, text = line.partition(": ")
        trades.extend(reader.cryptofeed_trades(micros(stamp), json.loads(text)))
    return trades


def read_jsonl(path: Path) -> list[RecordedTrade]:
    """The trades of a K2 JSONL recording (or ledger), in file order."""
    trades: list[RecordedTrade] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line, parse_float=Decimal)
            if data.get("kind") == BOOK_KIND:
                continue  # a book message of a ledger: no trade
            trades.extend(exchanges.replay(data["exchange"]).ledger_trades(data))
        except (KeyError, TypeError, ValueError, ExchangeError) as exc:
            raise ConfigError(f"{path}:{number}: not a K2 trade line ({exc})") from exc
    return trades


def read_recording(path: Path) -> list[RecordedTrade]:
    """Read either format (``.jsonl``/``.json`` files are K2 JSONL, others cryptofeed)."""
    if not path.is_file():
        raise ConfigError(f"replay file {path} does not exist")
    if path.suffix in (".jsonl", ".json"):
        return read_jsonl(path)
    return read_cryptofeed(path)


class ReplaySource:
    """Feeds one exchange's recorded trades into its market at the recorded pace."""

    def __init__(
        self, market: ExchangeMarket, trades: Iterable[RecordedTrade], speed: float, retention: int
    ) -> None:
        self._market = market
        self._trades = sorted(trades, key=lambda trade: trade.at_us)
        self._speed = speed
        self._index = 0
        self._start: int | None = None
        self._next_id: dict[str, int] = {}
        self._symbols = self._resolve_symbols(retention)

    @property
    def remaining(self) -> int:
        return len(self._trades) - self._index

    def _resolve_symbols(self, retention: int) -> dict[str, str]:
        """Recorded spelling → listed symbol, listing unknown pairs shaped by their trades."""
        aliases = {
            alias: inst.symbol
            for inst in self._market.instruments.values()
            for alias in inst.aliases
        }
        resolved: dict[str, str] = {}
        for trade in self._trades:
            name = trade.symbol
            if name in resolved:
                continue
            if name in self._market.instruments:
                resolved[name] = name
            elif name in aliases:
                resolved[name] = aliases[name]
            else:
                same = [t for t in self._trades if t.symbol == name]
                price = max((t.price for t in same), key=lambda p: len(p.partition(".")[2]))
                qty = max((t.qty for t in same), key=lambda q: len(q.partition(".")[2]))
                self._market.add_instrument(
                    inferred_instrument(trade.exchange, name, price, qty), retention
                )
                resolved[name] = name
        return resolved

    def advance(self, now: int, elapsed_us: int) -> list[Batch]:
        if self._start is None:
            self._start = now
        if self._index >= len(self._trades):
            return []
        first = self._trades[0].at_us
        played = now - self._start
        grouped: dict[str, tuple[list[SimTrade], list[AggTrade]]] = {}
        while self._index < len(self._trades):
            trade = self._trades[self._index]
            if self._speed and (trade.at_us - first) > played * self._speed:
                break
            self._index += 1
            symbol = self._symbols[trade.symbol]
            trades, aggs = grouped.setdefault(symbol, ([], []))
            sim = self._sim_trade(symbol, trade)
            trades.append(sim)
            if trade.agg is not None:
                agg_id, first_id, last_id = trade.agg
                aggs.append(
                    AggTrade(
                        agg_id,
                        trade.price,
                        trade.qty,
                        first_id,
                        last_id,
                        trade.time_us,
                        trade.side,
                    )
                )
        return [(symbol, trades, aggs) for symbol, (trades, aggs) in grouped.items()]

    def price(self, symbol: str) -> int | None:
        """A recording has no price before its trades."""
        return None

    def _sim_trade(self, symbol: str, trade: RecordedTrade) -> SimTrade:
        trade_id = trade.trade_id
        if trade_id is None:
            trade_id = self._next_id.get(symbol, 1)
        self._next_id[symbol] = trade_id + 1
        agg_id = trade.agg[0] if trade.agg is not None else trade_id
        return SimTrade(
            trade_id, trade.price, trade.qty, trade.time_us, trade.side, trade.ord_type, agg_id
        )
