"""The HTTP API over a real Iceberg catalog read by DuckDB: results equal the same query run
directly in DuckDB, pagination is exact while trades land, time travel, formats, limits."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from k2.api.app import create_app
from k2.api.security import hash_key
from k2.config import ApiSettings, Settings
from k2.exchanges import EXCHANGE_NAMES
from k2.lake.catalog import duckdb_connect
from tests.conftest import make_settings
from tests.integration import gold_rows
from tests.integration.gold_rows import BINANCE_BTC, KRAKEN_ETH
from tests.polling import Pending, wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
DECIMALS = ("price", "quantity", "quote_quantity")


def api_settings(home: Path, **api: Any) -> Settings:
    settings = make_settings(home)
    options = ApiSettings(refresh_interval_s=0.1, **api)
    return settings.model_copy(update={"api": options})


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A private catalog: 3,000 Binance trades over 3 hours, 400 Kraken trades, their 1m and
    1h bars, and gap events (one unfilled in hour 2, one backfilled, and an unverified interval
    of the order book in hour 3)."""
    settings = api_settings(tmp_path_factory.mktemp("apilake"))
    catalog = gold_rows.create_gold(settings)
    first = gold_rows.trades(BINANCE_BTC, T0, 2000, 3_600_000_000 // 1000)
    first_snapshot = gold_rows.append(catalog, "gold.trades", first)
    second = gold_rows.trades(BINANCE_BTC, T0 + timedelta(hours=2), 1000, 3_600_000, 2001)
    second += gold_rows.trades(KRAKEN_ETH, T0, 400, 9_000_000)
    gold_rows.append(catalog, "gold.trades", second)
    everything = first + second
    for interval in ("1m", "1h"):
        gold_rows.append(catalog, f"gold.ohlcv_{interval}", gold_rows.bars(everything, interval))
    gaps = [
        gold_rows.gap(
            BINANCE_BTC,
            first_missing_id=5000,
            last_missing_id=5009,
            detected_us=T0 + timedelta(hours=1, minutes=30),
        ),
        gold_rows.gap(
            BINANCE_BTC,
            backfilled=True,
            backfilled_count=3,
            first_missing_id=10,
            last_missing_id=12,
            detected_us=T0 + timedelta(minutes=5),
        ),
        gold_rows.gap(
            BINANCE_BTC,
            stream="book",
            detected_by="sequence_gap",
            from_us=T0 + timedelta(hours=2, minutes=10),
            to_us=T0 + timedelta(hours=2, minutes=11),
            detected_us=T0 + timedelta(hours=2, minutes=11),
        ),
    ]
    gold_rows.append(catalog, "gold.gaps", gaps)
    return {
        "settings": settings,
        "catalog": catalog,
        "first": first,
        "first_snapshot": first_snapshot,
        "all": everything,
    }


@pytest.fixture(scope="module")
def client(lake: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(lake["settings"])) as test_client:
        yield test_client


def direct(lake: dict[str, Any], sql: str, table: str, params: list[Any]) -> list[dict[str, Any]]:
    """``sql`` with ``{t}`` as the table's current iceberg_scan, run in a DuckDB of its own."""
    con = duckdb_connect(lake["settings"].lake)
    location = lake["catalog"].load_table(table).metadata_location
    result = con.execute(sql.format(t="iceberg_scan(?)"), [location, *params])
    names = [column[0] for column in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def as_values(row: dict[str, Any]) -> dict[str, Any]:
    """An API JSON row with decimals and times turned back into Decimal and datetime."""
    out = dict(row)
    for name, value in row.items():
        if isinstance(value, str) and name in {*DECIMALS, "open", "high", "low", "close"}:
            out[name] = Decimal(value)
        elif isinstance(value, str) and (name.endswith("_ts") or name.startswith("bar_")):
            assert value.endswith("Z") and len(value) == 27, value  # RFC 3339 with µs
            out[name] = datetime.fromisoformat(value)
    return out


def walk(client: TestClient, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Every page of /v1/trades from ``params``; the rows and the number of pages."""
    rows, pages, cursor = [], 0, None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/trades", params=query).json()
        rows += body["data"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return rows, pages


BTC = {"exchange": "binance", "symbol": "BTC/USDT"}
WINDOW = {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T13:00:00Z"}


def wait_for_series(client: TestClient, exchange: str, symbol: str) -> None:
    def listed() -> bool | Pending:
        series = [(r["exchange"], r["symbol"]) for r in client.get("/v1/symbols").json()["data"]]
        return (exchange, symbol) in series or Pending(series)

    wait_until(listed, 30, f"{exchange} {symbol} in /v1/symbols", every_s=0.1)


def test_trades_equal_the_same_query_in_duckdb_exactly(
    client: TestClient, lake: dict[str, Any]
) -> None:
    """A page of trades has the values DuckDB reads from the table, decimals as exact text."""
    wait_for_series(client, **BTC)
    body = client.get("/v1/trades", params={**BTC, **WINDOW, "limit": 500}).json()
    expected = direct(
        lake,
        "SELECT * FROM {t} WHERE exchange = ? AND symbol = ? ORDER BY exchange_ts, "
        "trade_id::BIGINT LIMIT 500",
        "gold.trades",
        ["binance", "BTC/USDT"],
    )
    assert len(body["data"]) == 500 and body["next_cursor"]
    for got, want in zip(body["data"], expected, strict=True):
        assert all(isinstance(got[name], str) for name in DECIMALS)
        values = as_values(got)
        for name in got:
            assert values[name] == want[name], name
    price = body["data"][0]["price"]
    assert "e" not in price.lower() and not price.endswith("0")


def test_pagination_returns_each_trade_once_while_trades_land(
    client: TestClient, lake: dict[str, Any]
) -> None:
    """Walking the pages while new trades are committed yields the first page's snapshot,
    every trade once; a new walk then sees the new trades too."""
    wait_for_series(client, **BTC)
    params = {**BTC, **WINDOW, "limit": 700}
    first = client.get("/v1/trades", params=params).json()
    rows, cursor = list(first["data"]), first["next_cursor"]
    late = gold_rows.trades(BINANCE_BTC, T0 + timedelta(minutes=1), 50, 1_000_000, 900_000)
    gold_rows.append(lake["catalog"], "gold.trades", late)
    while cursor:
        body = client.get("/v1/trades", params={**params, "cursor": cursor}).json()
        rows += body["data"]
        cursor = body["next_cursor"]
    ids = [r["message_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 3000
    assert ids == [
        r["message_id"]
        for r in sorted(lake["all"], key=gold_rows._order)
        if r["exchange"] == "binance"
    ]

    def walked_with_the_new_trades() -> list[dict[str, Any]] | Pending:
        fresh, _ = walk(client, {**params, "limit": 5000})
        return fresh if len(fresh) == 3050 else Pending(f"{len(fresh)} trades")

    fresh = wait_until(walked_with_the_new_trades, 30, "a new walk to see 3050 trades", every_s=0.1)
    assert len({r["message_id"] for r in fresh}) == 3050


def test_as_of_returns_the_earlier_snapshots_rows(client: TestClient, lake: dict[str, Any]) -> None:
    """as_of a snapshot id, or a time just after it, reads that snapshot only."""
    wait_for_series(client, **BTC)
    table = lake["catalog"].load_table("gold.trades")
    first = table.snapshot_by_id(lake["first_snapshot"])
    expected = sorted(r["message_id"] for r in lake["first"])
    at = datetime.fromtimestamp(first.timestamp_ms // 1000, UTC) + timedelta(
        milliseconds=first.timestamp_ms % 1000
    )
    for as_of in (str(first.snapshot_id), at.isoformat()):
        rows, _ = walk(client, {**BTC, **WINDOW, "limit": 5000, "as_of": as_of})
        assert sorted(r["message_id"] for r in rows) == expected
    early = client.get("/v1/trades", params={**BTC, "as_of": "2001-01-01T00:00:00Z"})
    assert early.status_code == 404 and "no snapshot" in early.json()["detail"]


def test_csv_parquet_and_arrow_read_back_equal(client: TestClient) -> None:
    """The same page as CSV, Parquet and Arrow reads back equal to JSON, decimals exact."""
    wait_for_series(client, **BTC)
    params = {**BTC, **WINDOW, "limit": 1234}
    rows = client.get("/v1/trades", params=params).json()["data"]
    want = [as_values(r) for r in rows]
    csv = client.get("/v1/trades", params={**params, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    parsed = pa_csv.read_csv(
        io.BytesIO(csv.content),
        convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(rows[0], pa.string())),
    ).to_pylist()
    assert [{k: v or None for k, v in r.items()} for r in parsed] == rows
    parquet = client.get(
        "/v1/trades", params=params, headers={"Accept": "application/vnd.apache.parquet"}
    )
    arrow = client.get("/v1/trades", params={**params, "format": "arrow"})
    assert parquet.headers["x-next-cursor"] and arrow.headers["x-next-cursor"]
    for table in (
        pq.read_table(io.BytesIO(parquet.content)),
        pa.ipc.open_stream(arrow.content).read_all(),
    ):
        assert table.schema.field("price").type == pa.decimal128(38, 18)
        got = [
            {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in r.items()}
            for r in table.to_pylist()
        ]
        assert got == want
    nxt = client.get(
        "/v1/trades", params={**params, "format": "arrow", "cursor": arrow.headers["x-next-cursor"]}
    )
    json_next = client.get(
        "/v1/trades",
        params={**params, "cursor": client.get("/v1/trades", params=params).json()["next_cursor"]},
    ).json()
    assert pa.ipc.open_stream(nxt.content).read_all().column("message_id").to_pylist() == [
        r["message_id"] for r in json_next["data"]
    ]


def test_bars_latest_and_symbols_equal_duckdb(client: TestClient, lake: dict[str, Any]) -> None:
    """One day of 1-minute bars, the latest trades and the symbol summary match DuckDB."""
    wait_for_series(client, **BTC)
    body = client.get(
        "/v1/ohlcv/1m",
        params={**BTC, "start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"},
    ).json()
    expected = direct(
        lake,
        "SELECT * FROM {t} WHERE exchange = ? AND symbol = ? ORDER BY bar_start",
        "gold.ohlcv_1m",
        ["binance", "BTC/USDT"],
    )
    assert len(body["data"]) == len(expected) == 180
    for got, want in zip(body["data"], expected, strict=True):
        assert (
            as_values(got)
            | {
                "vwap": Decimal(got["vwap"]),
                "volume": Decimal(got["volume"]),
                "quote_volume": Decimal(got["quote_volume"]),
                "buy_volume": Decimal(got["buy_volume"]),
                "sell_volume": Decimal(got["sell_volume"]),
                "updated_at": datetime.fromisoformat(got["updated_at"]),
            }
            == want
        )
    latest = client.get("/v1/trades/latest", params={**BTC, "n": 25}).json()["data"]
    newest = direct(
        lake,
        "SELECT message_id FROM {t} WHERE exchange = ? AND symbol = ? "
        "ORDER BY exchange_ts DESC, trade_id::BIGINT DESC LIMIT 25",
        "gold.trades",
        ["binance", "BTC/USDT"],
    )
    assert [r["message_id"] for r in latest] == [r["message_id"] for r in newest]
    summary = direct(
        lake,
        "SELECT exchange, symbol, min(exchange_ts) AS f, max(exchange_ts) AS l, count(*) AS n "
        "FROM {t} GROUP BY ALL ORDER BY ALL",
        "gold.trades",
        [],
    )
    rows = client.get("/v1/symbols").json()["data"]
    assert [
        (
            r["exchange"],
            r["symbol"],
            datetime.fromisoformat(r["first_trade"]),
            datetime.fromisoformat(r["last_trade"]),
            r["trade_count"],
        )
        for r in rows
    ] == [(s["exchange"], s["symbol"], s["f"], s["l"], s["n"]) for s in summary]
    exchanges = client.get("/v1/exchanges").json()["data"]
    # Every configured exchange is listed, those without a trade in Gold with a count of 0.
    assert {e["exchange"]: e["trade_count"] for e in exchanges} == {
        **dict.fromkeys(EXCHANGE_NAMES, 0),
        "binance": summary[0]["n"],
        "kraken": summary[1]["n"],
    }


def test_coverage_tells_complete_hours_from_gaps_and_empty_ones(client: TestClient) -> None:
    """Hours with trades are complete, the hour of an unfilled gap is not, a quiet hour is
    empty; a backfilled gap is not listed, nor is an interval in which the order book (not the
    trades) was unverified."""
    wait_for_series(client, **BTC)
    rows = client.get(
        "/v1/coverage",
        params={**BTC, "start": "2024-05-01T10:00:00Z", "end": "2024-05-01T14:00:00Z"},
    ).json()["data"]
    assert [(r["hour"], r["status"]) for r in rows] == [
        ("2024-05-01T10:00:00.000000Z", "complete"),
        ("2024-05-01T11:00:00.000000Z", "gaps"),
        ("2024-05-01T12:00:00.000000Z", "complete"),
        ("2024-05-01T13:00:00.000000Z", "empty"),
    ]
    assert rows[0]["trade_count"] == 1000 + 50  # the 50 landed by the pagination test
    (gap,) = rows[1]["unfilled_gaps"]
    assert (gap["first_missing_id"], gap["last_missing_id"], gap["missing_trades"]) == (
        5000,
        5009,
        10,
    )


def test_refusals_say_what_to_change(client: TestClient) -> None:
    """Unknown names are 404 naming them, bad times 422, limits 400 naming the limit."""
    wait_for_series(client, **BTC)
    cases = [
        ({"exchange": "nyse", "symbol": "BTC/USDT"}, 404, "unknown exchange 'nyse'"),
        ({"exchange": "binance", "symbol": "DOGE/EUR"}, 404, "unknown symbol 'DOGE/EUR'"),
        ({**BTC, "start": "yesterday"}, 422, "start='yesterday' is not a time"),
        (
            {**BTC, "start": "2024-05-01T12:00:00Z", "end": "2024-05-01T11:00:00Z"},
            422,
            "before end",
        ),
        ({**BTC, "limit": 10_001}, 400, "maximum 10000"),
        ({**BTC, "start": "2024-05-01T00:00:00Z", "end": "2024-05-03T00:00:00Z"}, 400, "24 hours"),
        ({**BTC, "cursor": "bm90LWEtY3Vyc29y"}, 400, "cursor"),
        ({**BTC, "format": "xml"}, 422, "format"),
    ]
    for params, status, text in cases:
        response = client.get("/v1/trades", params=params)
        assert response.status_code == status, (params, response.text)
        assert text in response.json()["detail"], response.text
    bad = client.get("/v1/ohlcv/2m", params=BTC)
    assert bad.status_code == 404 and "2m" in bad.json()["detail"]


def test_api_keys_and_rate_limits(lake: dict[str, Any]) -> None:
    """With keys configured: no key and a wrong key are 401, the right key passes until its
    burst is spent, then 429 with Retry-After."""
    settings = lake["settings"].model_copy(
        update={
            "api": ApiSettings(
                refresh_interval_s=0.1,
                key_hashes=(hash_key("s3cret"),),
                rate_limit_per_s=0.5,
                rate_limit_burst=3,
            )
        }
    )
    with TestClient(create_app(settings)) as keyed:
        assert keyed.get("/v1/exchanges").status_code == 401
        assert keyed.get("/v1/exchanges", headers={"X-API-Key": "guess"}).status_code == 401
        ok = [
            keyed.get("/v1/exchanges", headers={"Authorization": "Bearer s3cret"}) for _ in range(3)
        ]
        assert [r.status_code for r in ok] == [200, 200, 200]
        limited = keyed.get("/v1/exchanges", headers={"X-API-Key": "s3cret"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert keyed.get("/healthz").status_code == 200


def test_health_metrics_docs_and_page(client: TestClient) -> None:
    """/healthz reports the commit age, /metrics counts requests by route, /docs and / load."""
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["newest_commit_age_s"] >= 0
    client.get("/v1/ohlcv/1h", params=BTC)
    metrics = client.get("/metrics").text
    assert (
        'k2_api_requests_total{method="GET",route="/v1/ohlcv/{interval}",status="200"}' in metrics
    )
    assert "k2_build_info{" in metrics
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static/swagger-ui/swagger-ui-bundle.js" in docs.text
    assert client.get("/static/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert "/v1/trades" in client.get("/openapi.json").json()["paths"]
    assert "<title>K2" in client.get("/").text
