"""The fast path for Coinbase trade messages gives what the generic parser gives, or steps aside."""

from __future__ import annotations

from hypothesis import given, settings

from k2.exchanges.coinbase.fastparse import parse_trades
from k2.exchanges.coinbase.parse import generic_frame, parse_frame
from tests.unit.exchanges.coinbase.strategies import market_trades

from .test_parse import ENVELOPE


@settings(max_examples=200)
@given(text=market_trades())
def test_the_fast_path_and_the_generic_parser_agree_on_generated_messages(text: str) -> None:
    """Every generated message gives the same trades on both paths, oldest first per product."""
    fast = parse_trades(text, ENVELOPE)
    generic = generic_frame(text, ENVELOPE)
    if fast is not None:
        assert fast == generic
    assert parse_frame(text, ENVELOPE) == generic
    for trade in generic.trades:
        assert trade.trade_key == int(str(trade.fields["trade_id"]))
    keys = [t.trade_key or 0 for t in generic.trades]
    assert keys == sorted(keys)
