"""The OKX feed client's own rules: requests within OKX's size and hourly limits."""

from __future__ import annotations

import pytest

from k2.exchanges.okx import wire
from k2.exchanges.okx.client import RequestWindow, request_chunks


def test_subscribe_requests_stay_under_64_kb() -> None:
    """Thousands of instruments are split into requests whose JSON is under OKX's 64 KB."""
    names = [f"A{n:05d}-USDT" for n in range(5000)]
    chunks = request_chunks(names)
    assert [n for chunk in chunks for n in chunk] == names and len(chunks) > 1
    for chunk in chunks:
        text = wire.request("subscribe", wire.ALL_TRADES, chunk, "12345678901234567890")
        assert len(text.encode()) <= wire.MAX_REQUEST_BYTES


def test_the_hourly_request_window() -> None:
    """At most 480 requests in any hour of one connection; the oldest frees a place."""
    window = RequestWindow(480)
    for second in range(480):
        assert window.wait_s(float(second)) == 0
        window.spend(float(second))
    assert window.wait_s(600.0) == pytest.approx(3000.0)
    assert window.wait_s(3600.0) == 0
