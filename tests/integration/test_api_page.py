"""The web page in a real browser (Debian's chromium and chromium-driver, driven by selenium):
it loads with no console errors, its chart shows the bars the API returns, and its live part
updates as trades reach Kafka; the API docs render from the vendored Swagger UI. A screenshot is
saved as ``k2-page.png`` in the test's tmp path.

The charts draw on canvases (lightweight-charts), so the checks read what the page handed them
(``window.k2Page``) beside what the API serves."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from k2.config import ApiSettings, Settings
from k2.domain import EPOCH
from k2.ingest.avro import ConfluentEncoder
from k2.lake.create import create_table
from k2.lake.tables import silver_book_changes
from k2.schemas import schema_text
from k2.schemas.registry import register_value_schema
from k2.stack.manager import Stack
from k2.transport.topics import TopicAdmin, k2_topics, raw_topic
from tests.integration import gold_rows
from tests.integration.api_server import ApiServer
from tests.integration.gold_rows import BINANCE_BTC
from tests.polling import Pending, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PAGE_S = 60.0  # how long the page may take to show what a test waits for
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        pytest.fail("chromium and chromium-driver are missing; run `make sysdeps`")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def raw_record(trade_id: int, moment: datetime) -> dict[str, Any]:
    """A Binance raw record as the ingest writes it (Confluent Avro)."""
    us = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return {
        "exchange_symbol": "BTCUSDT", "event_type": "trade", "event_time": us,
        "trade_id": trade_id, "agg_trade_id": None, "first_trade_id": None,
        "last_trade_id": None, "price": f"64000.{trade_id % 100:02d}", "quantity": "0.015",
        "trade_time": us, "buyer_is_maker": False, "ignore_m": True,
        "time_unit": "MICROSECOND", "stream": "btcusdt@trade", "received_us": us,
        "connection_id": "page-test", "position": trade_id, "protocol": "binance-trade",
        "snapshot": False, "message_id": f"binance:BTCUSDT:{trade_id}", "k2_version": "test",
    }  # fmt: skip


def test_page_shows_health_the_api_bars_and_live_trades(
    stack: Stack, settings: Settings, tmp_path: Path, browser: Any
) -> None:
    """The web page, in a real browser, shows the pipeline's health, the same bars the API serves
    and live trades as they arrive, and its API docs render offline, with no browser error."""
    private = settings.model_copy(
        update={
            "stack": settings.stack.model_copy(update={"home": tmp_path / "home"}),
            "kafka": settings.kafka.model_copy(update={"topic_prefix": "test.api.page."}),
            "exchanges": ("binance",),
            "api": ApiSettings(refresh_interval_s=0.2),
        }
    )
    TopicAdmin(private.kafka_config()).ensure(k2_topics(private.kafka, private.exchanges))
    topic = raw_topic("binance", private.kafka.topic_prefix)
    registry = SchemaRegistryClient(private.registry_config())
    encoder = ConfluentEncoder(
        "binance_raw", register_value_schema(registry, topic, schema_text("binance_raw"))
    )
    catalog = gold_rows.create_gold(private)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=90)
    trades = gold_rows.trades(BINANCE_BTC, start, 3000, 1_700_000)
    gold_rows.append(catalog, "gold.trades", trades)
    gold_rows.append(catalog, "gold.ohlcv_1m", gold_rows.bars(trades, "1m"))
    create_table(catalog, silver_book_changes())
    book_start = (now - timedelta(minutes=10) - EPOCH) // timedelta(microseconds=1)
    book = [
        *gold_rows.book_message(1, 0.0, [("63999.5", "1.25"), ("63999", "2")],
                                [("64000.5", "0.5"), ("64001", "3")], snapshot=True,
                                t0_us=book_start),
        *gold_rows.book_message(2, 60.0, [("64000", "0.75")], [], t0_us=book_start),
        *gold_rows.book_message(3, 120.0, [], [("64000.5", "0")], t0_us=book_start),
    ]  # fmt: skip
    gold_rows.append(catalog, "silver.book_changes", book)
    series = {"exchange": "binance", "symbol": "BTC/USDT"}

    with ApiServer(private) as base:
        browser.get(base + "/")
        wait_until(
            lambda: browser.find_elements(By.CSS_SELECTOR, "#series tr[data-series]"),
            PAGE_S,
            "the page to show the pipeline",
        )

        def plotted() -> list[Any] | Pending:
            found = browser.execute_script("return window.k2Page.plotted()")
            return found if len(found) >= 60 else Pending(len(found))

        candles = wait_until(plotted, PAGE_S, "the page to plot candles")
        assert browser.find_elements(By.CSS_SELECTOR, "#chart canvas")
        chart = browser.find_element(By.ID, "chart")
        params = {
            "exchange": "binance",
            "symbol": "BTC/USDT",
            "start": chart.get_attribute("data-start"),
            "end": chart.get_attribute("data-end"),
        }
        api_bars = httpx.get(f"{base}/v1/ohlcv/1m", params=params).json()["data"]
        shown = browser.execute_script("return window.k2Page.bars()")
        names = ("bar_start", "open", "high", "low", "close", "volume")
        assert [{n: b[n] for n in names} for b in shown] == [
            {n: b[n] for n in names} for b in api_bars
        ]
        assert [c["close"] for c in candles] == [float(b["close"]) for b in api_bars]
        assert len(shown) >= 60
        freshness = browser.find_element(By.CSS_SELECTOR, "#series tr[data-series] td:nth-child(4)")
        assert freshness.text.endswith("min")

        def connected() -> bool | Pending:
            text = browser.find_element(By.ID, "live-state").text
            return "connected" in text or Pending(text)

        wait_until(connected, PAGE_S, "the page to show live: connected")
        producer = Producer(private.kafka_config())
        first_id = 1_000_000
        for n in range(20):
            producer.produce(
                topic, key=b"BTCUSDT", value=encoder.encode(raw_record(first_id + n, now))
            )
        producer.flush(30)
        last = f"binance:BTCUSDT:{first_id + 19}"

        def newest_trade() -> bool | Pending:
            shown = browser.find_element(By.CSS_SELECTOR, "#trades tr")
            message_id = shown.get_attribute("data-message-id")
            return message_id == last or Pending(message_id)

        wait_until(newest_trade, PAGE_S, f"the page to show the live trades up to {last}")
        assert "live: 20 trades" in browser.find_element(By.ID, "live-state").text
        assert browser.execute_script("return window.k2Page.bars().at(-1).close") == "64000.19"
        assert browser.execute_script("return window.k2Page.plotted().at(-1).close") == 64000.19
        book = httpx.get(f"{base}/v1/book", params={**series, "depth": 50}).json()
        bbo = httpx.get(f"{base}/v1/bbo", params={**series, "limit": 5000}).json()["data"]

        def book_shown() -> Any:
            found = browser.execute_script("return window.k2Page.depth()")
            return found if found["bids"] and found["asks"] else Pending(found)

        depth = wait_until(book_shown, PAGE_S, "the page to show the book's depth")
        shown_book = browser.execute_script("return window.k2Page.book()")
        assert {**shown_book, "at": None} == {**book, "at": None}  # "at": when each asked
        cumulative = [float(sum(Decimal(size) for _, size in book["bids"][: n + 1]))
                      for n in range(len(book["bids"]))]  # fmt: skip
        assert [p["value"] for p in depth["bids"]] == cumulative[::-1]
        assert [p["time"] for p in depth["asks"]] == [float(p) for p, _ in book["asks"]]
        note = browser.find_element(By.ID, "book-note").text
        assert f"bid {book['bids'][0][0]} × {book['bids'][0][1]}" in note and "verified" in note
        spread = browser.execute_script("return window.k2Page.spread()")
        assert [p["value"] for p in spread] == [float(row["spread"]) for row in bbo]
        shot = tmp_path / "k2-page.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        browser.get(base + "/docs")  # the vendored Swagger UI renders with no network
        wait_until(
            lambda: browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"),
            PAGE_S,
            "the page to show the docs",
        )
        paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert "/v1/trades" in paths
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
