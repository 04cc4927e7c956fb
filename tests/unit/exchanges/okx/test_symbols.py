"""OKX's SPOT instruments: resolved by native or canonical name, unknown names refused in one
line, only ``live`` instruments traded; requests stay within OKX's limits."""

from __future__ import annotations

import json

import pytest

from k2.errors import ExchangeError, UnknownSymbolError
from k2.exchanges.okx import wire
from k2.exchanges.okx.client import RequestWindow, request_chunks
from k2.exchanges.okx.symbols import parse_instruments, resolve_instruments


def _listed() -> dict[str, object]:
    rows = [
        wire.instrument_row("BTC-USDT", "BTC", "USDT", "0.1", "0.00000001"),
        wire.instrument_row("ETH-BTC", "ETH", "BTC", "0.00001", "0.0001", state="suspend"),
    ]
    return json.loads(wire.rest_body(rows))  # type: ignore[no-any-return]


def test_instruments_resolve_by_native_and_canonical_names() -> None:
    listed = parse_instruments(_listed())
    found = resolve_instruments(["btc-usdt", "ETH/BTC"], listed)
    assert [i.inst_id for i in found] == ["BTC-USDT", "ETH-BTC"]
    assert [i.state for i in found] == ["live", "suspend"]


def test_an_unknown_instrument_is_refused_in_one_line_naming_it() -> None:
    with pytest.raises(UnknownSymbolError) as caught:
        resolve_instruments(["BTC-USDT", "NOPE-USDT"], parse_instruments(_listed()))
    assert "NOPE-USDT" in str(caught.value) and "\n" not in str(caught.value)
    assert resolve_instruments(["NOPE-USDT"], {}, strict=False) == []


def test_an_error_code_is_an_exchange_error() -> None:
    with pytest.raises(ExchangeError, match="50011"):
        parse_instruments({"code": "50011", "msg": "Too Many Requests", "data": []})


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
