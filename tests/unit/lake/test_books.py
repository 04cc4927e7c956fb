"""``k2 book``'s rebuild of an order book at an instant, over a ``silver.book_changes`` on a
temporary catalog (DuckDB in the process, no services): the newest snapshot at or before the
instant, then the later messages in recorded order, skipping the ignored ones, cut to the depth
where the record says so, and the instant's verdict."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from k2.api.app import create_app
from k2.cli import main
from k2.config import Settings
from k2.domain import datetime_from_micros, micros_from_datetime
from k2.errors import QueryError
from k2.lake.books import book_at, top_of_book
from k2.lake.catalog import ensure_namespaces, open_catalog
from k2.lake.create import create_table
from k2.lake.query import LakeViews, quoted_name
from k2.lake.tables import silver_book_changes
from tests.integration.gold_rows import BOOK_T0_US
from tests.integration.gold_rows import book_message as message

T0 = BOOK_T0_US


def _settings(home: Path) -> Settings:
    return Settings(_env_file=None, stack={"home": home})  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A K2_HOME whose silver.book_changes holds two books of one symbol's history."""
    path = tmp_path_factory.mktemp("books")
    catalog = open_catalog(_settings(path).lake_access())
    ensure_namespaces(catalog)
    create_table(catalog, silver_book_changes())
    rows = [
        # the first snapshot, then updates; a removal; an update the capture ignored
        *message(10, 1.0, [("100", "1"), ("99", "2")], [("101", "1"), ("102", "5")], snapshot=True),
        *message(11, 2.0, [("100", "0"), ("98.5", "4")], []),
        *message(12, 3.0, [("99", "7")], [], outcome="ignored"),
        *message(13, 4.0, [], [("100.5", "0.25")]),
        # a resync: the REST snapshot recorded first, then an update received before it (held)
        *message(20, 10.0, [("97", "1")], [("103", "1")], snapshot=True),
        *message(21, 9.5, [("97.5", "3")], [], outcome="unverified"),
        *message(22, 11.0, [("96", "2")], [("103", "0"), ("104", "8")]),
        # a book cut to two levels a side after each message (Kraken, Bybit)
        *message(30, 1.0, [("10", "1"), ("9", "1")], [("11", "1")], snapshot=True, depth=2,
                 symbol="ETH/USDT"),
        *message(31, 2.0, [("9.5", "1")], [], depth=2, symbol="ETH/USDT"),
        *message(32, 3.0, [("10", "0")], [], depth=2, symbol="ETH/USDT"),
    ]  # fmt: skip
    table = catalog.load_table("silver.book_changes")
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))
    return path


@pytest.fixture(scope="module")
def views(home: Path) -> LakeViews:
    found = LakeViews(_settings(home).lake_access())
    found.refresh()
    return found


def at(views: LakeViews, seconds: float, depth: int = 10, symbol: str = "BTC/USDT") -> Any:
    moment = datetime_from_micros(T0 + round(seconds * 1e6))
    table = quoted_name("silver.book_changes")
    return book_at(views.connection, table, "binance", symbol, moment, depth)


def levels(*pairs: tuple[str, str]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(price), Decimal(size)) for price, size in pairs]


def test_the_book_is_its_snapshot_then_the_later_messages_up_to_the_instant(
    views: LakeViews,
) -> None:
    """A size of 0 removes its level, a new price is inserted in order, a message received
    after the instant is not applied, and one the capture ignored never is."""
    book = at(views, 1.0)
    assert book.bids == levels(("100", "1"), ("99", "2"))
    assert book.asks == levels(("101", "1"), ("102", "5"))
    assert book.messages == 1 and book.verified
    book = at(views, 4.5)
    assert book.bids == levels(("99", "2"), ("98.5", "4"))  # not the ignored 99 -> 7
    assert book.asks == levels(("100.5", "0.25"), ("101", "1"), ("102", "5"))
    assert book.messages == 3 and book.last_at == datetime_from_micros(T0 + 4_000_000)
    assert at(views, 4.5, depth=1).asks == levels(("100.5", "0.25"))


def test_a_later_snapshot_starts_again_and_its_held_updates_follow_it(views: LakeViews) -> None:
    """The resync's snapshot replaces the book; the update received before it but recorded after
    it is applied after it, and being unverified makes the instant unverified."""
    book = at(views, 10.0)
    assert book.bids == levels(("97.5", "3"), ("97", "1")) and book.asks == levels(("103", "1"))
    assert book.snapshot_at == datetime_from_micros(T0 + 10_000_000)
    assert not book.verified and book.messages == 2
    book = at(views, 12.0)
    assert book.bids == levels(("97.5", "3"), ("97", "1"), ("96", "2"))
    assert book.asks == levels(("104", "8"))


def test_a_book_cut_to_its_depth_loses_the_levels_pushed_out(views: LakeViews) -> None:
    """Cut to two levels after each message, the level pushed out by 9.5 does not come back
    when 10 is removed (the exchange sent no removal for it): what the exchange's book shows."""
    assert at(views, 2.0, symbol="ETH/USDT").bids == levels(("10", "1"), ("9.5", "1"))
    assert at(views, 3.0, symbol="ETH/USDT").bids == levels(("9.5", "1"))


def test_before_the_first_snapshot_there_is_no_book(views: LakeViews) -> None:
    """An instant before the symbol's first snapshot, or a symbol never captured, is refused in
    one line that says how books are captured."""
    with pytest.raises(QueryError, match="no binance BTC/USDT book snapshot at or before"):
        at(views, 0.5)
    with pytest.raises(QueryError, match="K2_INGEST__BINANCE__BOOKS=true"):
        at(views, 5.0, symbol="SOL/USDT")


def test_k2_book_prints_both_sides_and_json_keeps_exact_text(home: Path) -> None:
    """The table shows bids beside asks, best first, after a line with the verdict; JSON gives
    each level as exact decimal text."""
    moment = datetime_from_micros(T0 + 4_500_000)
    args = ["book", "binance", "BTC/USDT", "--at", moment.isoformat(), "--depth", "2"]
    with capture_logs():
        table = CliRunner().invoke(main, args, obj=_settings(home))
        document = CliRunner().invoke(main, [*args, "--format", "json"], obj=_settings(home))
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert "3 messages" in lines[0] and "verified" in lines[0]
    assert lines[2].split() == ["2", "99", "|", "100.5", "0.25"]
    found = json.loads(document.output)
    assert found["bids"] == [["99", "2"], ["98.5", "4"]]
    assert found["verified"] is True and found["messages"] == 3


def test_get_v1_book_answers_what_k2_book_prints(home: Path) -> None:
    """``GET /v1/book`` gives the same document as ``k2 book --format json``; an instant before
    the first snapshot is a 404 that says why, a depth out of range a 422."""
    settings = _settings(home)
    moment = datetime_from_micros(T0 + 12_000_000).isoformat()
    args = ["book", "binance", "BTC/USDT", "--at", moment, "--format", "json"]
    with capture_logs():
        printed = json.loads(CliRunner().invoke(main, args, obj=settings).output)
        with TestClient(create_app(settings)) as client:
            params = {"exchange": "binance", "symbol": "BTC/USDT", "at": moment}
            answer = client.get("/v1/book", params=params)
            early = client.get("/v1/book", params={**params, "at": "2020-01-01T00:00:00Z"})
            deep = client.get("/v1/book", params={**params, "depth": "0"})
    assert answer.status_code == 200 and answer.json() == printed
    assert printed["bids"] == [["97.5", "3"], ["97", "1"], ["96", "2"]]
    assert printed["verified"] is False
    assert early.status_code == 404 and "book snapshot at or before" in early.text
    assert deep.status_code == 422


def tops(views: LakeViews, start_s: float, end_s: float, limit: int = 100) -> Any:
    window = (
        datetime_from_micros(T0 + round(start_s * 1e6)),
        datetime_from_micros(T0 + round(end_s * 1e6)),
    )
    return top_of_book(
        views.connection, quoted_name("silver.book_changes"), "binance", "BTC/USDT", window, limit
    )


def seconds(top: Any) -> float:
    return (micros_from_datetime(top.at) - T0) / 1e6


def test_the_top_of_book_changes_at_each_instant_it_moved(views: LakeViews) -> None:
    """One row where the best bid or ask (price or size) changed, at K2's receive time; an
    update held for its snapshot takes effect with it, and an unverified one marks the rows
    until the next snapshot; a book first captured inside the window starts there."""
    found, following = tops(views, 0.5, 20.0)
    assert following is None
    assert [(seconds(t), t.bid, t.ask, t.verified) for t in found] == [
        (1.0, *levels(("100", "1"), ("101", "1")), True),
        (2.0, *levels(("99", "2"), ("101", "1")), True),
        (4.0, *levels(("99", "2"), ("100.5", "0.25")), True),
        (10.0, *levels(("97.5", "3"), ("103", "1")), False),
        (11.0, *levels(("97.5", "3"), ("104", "8")), False),
    ]
    assert (found[2].spread, found[2].mid) == (Decimal("1.5"), Decimal("99.75"))


def test_the_first_row_is_the_top_in_effect_at_start_and_pages_join_exactly(
    views: LakeViews,
) -> None:
    """A window starting between changes begins with the top then in effect, at its start; a
    page cut by the limit says where the next starts, and the next page goes on from there
    with nothing repeated or lost."""
    found, _ = tops(views, 3.0, 10.5)
    assert [(seconds(t), t.bid, t.ask) for t in found] == [
        (3.0, *levels(("99", "2"), ("101", "1"))),
        (4.0, *levels(("99", "2"), ("100.5", "0.25"))),
        (10.0, *levels(("97.5", "3"), ("103", "1"))),
    ]
    first, following = tops(views, 1.0, 20.0, limit=2)
    assert following is not None and [seconds(t) for t in first] == [1.0, 2.0]
    second, _ = tops(views, seconds_of(following), 20.0)
    assert [seconds(t) for t in first + second] == [1.0, 2.0, 4.0, 10.0, 11.0]


def seconds_of(moment: Any) -> float:
    return (micros_from_datetime(moment) - T0) / 1e6


def test_get_v1_bbo_pages_the_top_of_book(home: Path) -> None:
    """``GET /v1/bbo`` answers the rows as exact decimal text with the next page's start."""
    start = datetime_from_micros(T0).isoformat()
    end = datetime_from_micros(T0 + 20_000_000).isoformat()
    params = {"exchange": "binance", "symbol": "BTC/USDT", "start": start, "end": end}
    with capture_logs(), TestClient(create_app(_settings(home))) as client:
        page = client.get("/v1/bbo", params={**params, "limit": "3"}).json()
        rest = client.get("/v1/bbo", params={**params, "start": page["next_start"]}).json()
    assert [row["mid"] for row in page["data"]] == ["100.5", "100", "99.75"]
    assert page["data"][2] == {
        "time": "2026-12-07T10:00:04.000000Z", "bid": "99", "bid_size": "2", "ask": "100.5",
        "ask_size": "0.25", "spread": "1.5", "mid": "99.75", "verified": True,
    }  # fmt: skip
    assert [row["ask"] for row in rest["data"]] == ["103", "104"] and rest["next_start"] is None


def test_k2_book_bbo_prints_one_row_per_change_and_where_more_start(home: Path) -> None:
    """``k2 book --bbo`` prints the top of book at each change over the range, unverified rows
    marked, and where the next rows start when the limit cuts them."""
    start = datetime_from_micros(T0).isoformat()
    end = datetime_from_micros(T0 + 20_000_000).isoformat()
    args = ["book", "binance", "BTC/USDT", "--bbo", "--start", start, "--end", end]
    with capture_logs():
        every = CliRunner().invoke(main, args, obj=_settings(home))
        cut = CliRunner().invoke(main, [*args, "--limit", "2"], obj=_settings(home))
    assert every.exit_code == 0, every.output
    rows = [line.split() for line in every.output.splitlines()[1:]]
    assert [row[0][11:19] for row in rows] == ["10:00:01", "10:00:02", "10:00:04", "10:00:10",
                                               "10:00:11"]  # fmt: skip
    assert rows[2][1:] == ["2", "99", "100.5", "0.25", "1.5", "99.75", "yes"]
    assert rows[3][-1] == "NO"
    assert cut.output.splitlines()[-1] == "more from 2026-12-07T10:00:04+00:00 (--start)"
