"""The recorded OKX session replays as the spot trades it holds, ids and strings as recorded."""

from __future__ import annotations

from k2.simulator.replay import read_recording
from tests.unit.exchanges.recordings import RECORDINGS


def test_the_recorded_session_replays_its_spot_trades_only() -> None:
    """The future's and the swap's trades are left out: K2 reads spot instruments."""
    trades = read_recording(RECORDINGS / "OKX.ws.1.0.trades")
    assert len(trades) == 69 and {t.exchange for t in trades} == {"okx"}
    first = trades[0]
    assert (first.symbol, first.trade_id, first.price, first.qty, first.side) == (
        "BTC-USDT", 338476307, "30236", "0.0002", "buy",
    )  # fmt: skip
    assert first.time_us == 1_652_459_224_818_000
    assert [t.trade_id for t in trades] == list(range(338476307, 338476307 + 69))
