"""OKX's SPOT instruments: resolved by native or canonical name, unknown names refused in one
line, only ``live`` instruments traded."""

from __future__ import annotations

import json

import pytest

from k2.errors import ExchangeError, UnknownSymbolError
from k2.exchanges.okx import wire
from k2.exchanges.okx.symbols import parse_instruments, resolve_instruments


def _listed() -> dict[str, object]:
    rows = [
        wire.instrument_row("BTC-USDT", "BTC", "USDT", "0.1", "0.00000001"),
        wire.instrument_row("ETH-BTC", "ETH", "BTC", "0.00001", "0.0001", state="suspend"),
    ]
    return json.loads(wire.rest_body(rows))  # type: ignore[no-any-return]


def test_instruments_resolve_by_native_and_canonical_names() -> None:
    """An OKX instrument named natively in any case or canonically is found, with its trading
    state."""
    listed = parse_instruments(_listed())
    found = resolve_instruments(["btc-usdt", "ETH/BTC"], listed)
    assert [i.inst_id for i in found] == ["BTC-USDT", "ETH-BTC"]
    assert [i.state for i in found] == ["live", "suspend"]


def test_an_unknown_instrument_is_refused_in_one_line_naming_it() -> None:
    """An instrument OKX does not list stops the ingest with one line naming it, unless the lookup
    is told to skip unknown names."""
    with pytest.raises(UnknownSymbolError) as caught:
        resolve_instruments(["BTC-USDT", "NOPE-USDT"], parse_instruments(_listed()))
    assert "NOPE-USDT" in str(caught.value) and "\n" not in str(caught.value)
    assert resolve_instruments(["NOPE-USDT"], {}, strict=False) == []


def test_an_error_code_is_an_exchange_error() -> None:
    """An error code from OKX's instruments endpoint is reported as OKX's error, not read as an
    empty list."""
    with pytest.raises(ExchangeError, match="50011"):
        parse_instruments({"code": "50011", "msg": "Too Many Requests", "data": []})
