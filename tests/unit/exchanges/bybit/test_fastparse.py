"""The typed fast path for Bybit spot pushes gives what the generic reader gives."""

from __future__ import annotations

from k2.exchanges.bybit.fastparse import parse_trades
from k2.exchanges.bybit.parse import generic_frame

from .test_parse import ENVELOPE, SPOT_CAPTURE


def test_a_spot_push_takes_the_fast_path_and_its_id_is_the_key() -> None:
    """A live spot push: the typed fast path gives what the generic reader gives, and the
    numeric id string becomes the integer key."""
    fast = parse_trades(SPOT_CAPTURE, ENVELOPE)
    assert fast is not None and fast == generic_frame(SPOT_CAPTURE, ENVELOPE)
    (trade,) = fast.trades
    assert trade.trade_key == 2290000001202469355
    assert (trade.fields["p"], trade.fields["v"], trade.fields["seq"]) == (
        "77606.8", "0.000712", 113508069853,
    )  # fmt: skip
