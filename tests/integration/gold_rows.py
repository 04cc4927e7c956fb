"""Gold tables filled with known trades, bars and gap events, for the query-surface tests.

Tables are created from K2's own definitions (``k2.lake.tables``) in a private catalog; trades
have exact 10-digit prices and 8-digit sizes (their product fits decimal(38,18) exactly); bars
are computed from the trades here with Decimal arithmetic, as the Gold job defines them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pyarrow as pa

from k2.domain import BAR_INTERVALS, EPOCH, datetime_from_micros
from k2.lake.catalog import ensure_namespaces, open_catalog
from k2.lake.create import create_table
from k2.lake.tables import gold_bars, gold_gaps, gold_trades
from k2.schemas import schema_json

WRITTEN = datetime(2030, 1, 1, tzinfo=UTC)
_E18 = Decimal(1).scaleb(-18)


@dataclass(frozen=True)
class Series:
    exchange: str
    symbol: str
    exchange_symbol: str

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]


BINANCE_BTC = Series("binance", "BTC/USDT", "BTCUSDT")
KRAKEN_ETH = Series("kraken", "ETH/USD", "ETH/USD")


def create_gold(settings: Any) -> Any:
    """The catalog with gold.trades, every gold.ohlcv_<interval> and gold.gaps created."""
    catalog = open_catalog(settings.lake_access())
    ensure_namespaces(catalog)
    create_table(catalog, gold_trades())
    for interval in BAR_INTERVALS:
        create_table(catalog, gold_bars(interval))
    create_table(catalog, gold_gaps(schema_json("gap")))
    return catalog


def trades(
    series: Series, start: datetime, count: int, step_us: int, first_id: int = 1
) -> list[dict[str, Any]]:
    """``count`` trades of ``series`` from ``start``, ``step_us`` apart; ids from ``first_id``.
    Every third trade shares the previous one's time, so the id orders equal times."""
    rows = []
    for n in range(count):
        trade_id = first_id + n
        moment = start + timedelta(microseconds=step_us * (n - n % 3 // 2))
        price = Decimal(60_000 + trade_id % 997) + Decimal(trade_id * 7919 % 10**10).scaleb(-10)
        quantity = Decimal(trade_id * 104_729 % 10**8 + 1).scaleb(-8)
        rows.append(
            {
                "message_id": f"{series.exchange}:{series.exchange_symbol}:{trade_id}",
                "exchange": series.exchange,
                "symbol": series.symbol,
                "base": series.base,
                "quote": series.quote,
                "exchange_symbol": series.exchange_symbol,
                "trade_id": str(trade_id),
                "price": price,
                "quantity": quantity,
                "quote_quantity": price * quantity,
                "side": "buy" if trade_id % 2 else "sell",
                "order_type": None if series.exchange == "binance" else "limit",
                "exchange_ts": moment,
                "received_ts": moment + timedelta(milliseconds=3),
                "kafka_topic": f"market.crypto.trades.{series.exchange}.raw",
                "kafka_partition": 0,
                "kafka_offset": trade_id,
                "protocol": "binance-trade" if series.exchange == "binance" else "kraken-v2",
                "gold_written_at": WRITTEN,
            }
        )
    return rows


def append(catalog: Any, identifier: str, rows: list[dict[str, Any]]) -> int:
    """Append ``rows`` to ``identifier`` in one commit; the new snapshot id."""
    table = catalog.load_table(identifier)
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))
    snapshot_id: int = catalog.load_table(identifier).current_snapshot().snapshot_id
    return snapshot_id


def _order(row: dict[str, Any]) -> tuple[datetime, int, str]:
    return row["exchange_ts"], int(row["trade_id"]), row["message_id"]


def bars(rows: Iterable[dict[str, Any]], interval: str) -> list[dict[str, Any]]:
    """The OHLCV bars of ``rows`` for ``interval``, exactly."""
    step = BAR_INTERVALS[interval] * 1_000_000
    groups: dict[tuple[str, str, datetime], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        us = (row["exchange_ts"] - EPOCH) // timedelta(microseconds=1)
        start = EPOCH + timedelta(microseconds=us - us % step)
        groups[(row["exchange"], row["symbol"], start)].append(row)
    out = []
    for (exchange, symbol, start), members in sorted(groups.items()):
        members.sort(key=_order)
        volume = sum((m["quantity"] for m in members), Decimal(0))
        quote_volume = sum((m["quote_quantity"] for m in members), Decimal(0))
        out.append(
            {
                "exchange": exchange,
                "symbol": symbol,
                "bar_start": start,
                "bar_end": start + timedelta(microseconds=step),
                "open": members[0]["price"],
                "high": max(m["price"] for m in members),
                "low": min(m["price"] for m in members),
                "close": members[-1]["price"],
                "volume": volume,
                "quote_volume": quote_volume,
                "vwap": (quote_volume / volume).quantize(_E18, rounding=ROUND_HALF_EVEN),
                "trade_count": len(members),
                "buy_volume": sum(
                    (m["quantity"] for m in members if m["side"] == "buy"), Decimal()
                ),
                "sell_volume": sum(
                    (m["quantity"] for m in members if m["side"] == "sell"), Decimal()
                ),
                "first_trade_id": members[0]["trade_id"],
                "last_trade_id": members[-1]["trade_id"],
                "updated_at": WRITTEN,
            }
        )
    return out


def gap(series: Series, **fields: Any) -> dict[str, Any]:
    """A gap event row of gold.gaps (unfilled unless ``backfilled=True``)."""
    row = {
        "exchange": series.exchange,
        "exchange_symbol": series.exchange_symbol,
        "first_missing_id": None,
        "last_missing_id": None,
        "from_us": None,
        "to_us": None,
        "detected_by": "reconnect",
        "backfilled": False,
        "backfilled_count": 0,
        "reason": "REST history unavailable",
        "detected_us": WRITTEN,
        "k2_version": "test",
        "stream": "trades",
        "symbol": series.symbol,
        "kafka_topic": "market.crypto.gaps",
        "kafka_partition": 0,
        "kafka_offset": 0,
        "gold_written_at": WRITTEN,
    }
    row.update(fields)
    return row


def from_trades(trades: Iterable[Any], topic: str) -> list[dict[str, Any]]:
    """gold.trades rows of :class:`k2.domain.Trade` values (as the Gold job writes them)."""
    rows = []
    for offset, trade in enumerate(trades):
        row = {name: getattr(trade, name) for name in trade.__dataclass_fields__}
        row.update(
            kafka_topic=topic,
            kafka_partition=0,
            kafka_offset=offset,
            protocol="test",
            gold_written_at=WRITTEN,
        )
        rows.append(row)
    return rows


BOOK_T0_US = 1_796_637_600_000_000


def book_message(
    offset: int,
    received_s: float,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    *,
    snapshot: bool = False,
    outcome: str = "verified",
    depth: int | None = None,
    symbol: str = "BTC/USDT",
    t0_us: int = BOOK_T0_US,
) -> list[dict[str, Any]]:
    """The silver.book_changes rows of one Binance book message (one per level), received
    ``received_s`` after ``t0_us``."""
    rows = []
    for side, levels in (("bid", bids), ("ask", asks)):
        for index, (price, size) in enumerate(levels):
            rows.append(
                {
                    "message_id": f"binance:{symbol}:c:{offset}",
                    "exchange": "binance",
                    "symbol": symbol,
                    "exchange_symbol": symbol.replace("/", ""),
                    "exchange_ts": None,
                    "received_ts": datetime_from_micros(t0_us + round(received_s * 1e6)),
                    "side": side,
                    "level": index,
                    "price": Decimal(price),
                    "size": Decimal(size),
                    "is_snapshot": snapshot,
                    "sequence": offset,
                    "verified": outcome == "verified",
                    "outcome": outcome,
                    "depth": depth,
                    "protocol": "binance-depth",
                    "kafka_topic": "market.crypto.books.binance.raw",
                    "kafka_partition": 3,
                    "kafka_offset": offset,
                    "silver_written_at": datetime_from_micros(t0_us),
                }
            )
    return rows
