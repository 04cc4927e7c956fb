"""OKX frames parse to exactly the trades and events they hold: the recorded session, the
documentation's examples, and generated pushes, on the fast path and the generic one alike."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2.exchanges.base import ControlKind, Envelope, FieldValue, ParsedFrame
from k2.exchanges.okx import wire
from k2.exchanges.okx.normalise import normalise_trade
from k2.exchanges.okx.parse import generic_frame, parse_frame, parse_push, trade_key

from ..recordings import received_frames
from ..strategies import json_values
from .strategies import trade_fields

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RECORDED = Envelope(1_652_459_225_507_260, "c", 0, "okx-trades-all")
ENVELOPE = Envelope(1_700_000_000_000_000, "c", 3, "okx-trades-all")

# Verbatim push examples of the documentation (okx.com/docs-v5/en, market data channels).
DOC_ALL_TRADES = """{
  "arg": {
    "channel": "trades-all",
    "instId": "BTC-USDT"
  },
  "data": [
    {
      "instId": "BTC-USDT",
      "tradeId": "130639474",
      "px": "42219.9",
      "sz": "0.12060306",
      "side": "buy",
      "source": "0",
      "ts": "1630048897897"
    }
  ]
}"""
DOC_TRADES = """{
  "arg": {
    "channel": "trades",
    "instId": "BTC-USDT"
  },
  "data": [
    {
      "instId": "BTC-USDT",
      "tradeId": "130639474",
      "px": "42219.9",
      "sz": "0.12060306",
      "side": "buy",
      "ts": "1630048897897",
      "count": "3",
      "source": "0",
      "seqId": 1234
    }
  ]
}"""
DOC_SUBSCRIBED = '{"id": "1512", "event": "subscribe", "arg": {"channel": "trades-all", ' \
    '"instId": "BTC-USDT"}, "connId": "a4d3ae55"}'  # fmt: skip
DOC_ERROR = (
    '{"id": "1512", "event": "error", "code": "60012", "msg": "Invalid request: {\\"op\\": '
    '\\"subscribe\\", \\"argss\\":[{ \\"channel\\" : \\"trades-all\\", \\"instId\\" : '
    '\\"BTC-USD-191227\\"}]}", "connId": "a4d3ae55"}'
)
# Captured from the live exchange by third-party clients (docs/exchange-protocols.md 4c).
CAPTURED_UNKNOWN = (
    '{"event":"error","msg":"Wrong URL or channel:tickers,instId:BTC-INEXISTANT doesn\'t '
    'exist...","code":"60018","connId":"ed8c407d"}'
)


def _recorded_pushes() -> list[str]:
    return [f for f in received_frames("OKX.ws.1.0.trades") if '"channel":"trades","instId"' in f
            and '"data"' in f]  # fmt: skip


def test_the_recorded_session_holds_its_74_trades_exactly_as_sent() -> None:
    """Every recorded trades push is its one trade, values the very strings of the frame."""
    pushes = _recorded_pushes()
    assert len(pushes) == 74
    for frame in pushes:
        (trade,) = parse_frame(frame, RECORDED).trades
        (row,) = json.loads(frame)["data"]
        assert dict(trade.fields) == {**row, "channel": "trades"}
        assert trade.trade_key == int(row["tradeId"]) and trade.native_symbol == row["instId"]
        assert f'"px":"{trade.fields["px"]}"' in frame and f'"sz":"{trade.fields["sz"]}"' in frame


def test_the_recorded_spot_trades_have_consecutive_ids_and_normalise_exactly() -> None:
    """BTC-USDT's 69 recorded trades follow one another id by id (one trade a push), and
    normalise to taker side, exact decimals and millisecond times."""
    spot = [t for f in _recorded_pushes() for t in parse_frame(f, RECORDED).trades
            if t.native_symbol == "BTC-USDT"]  # fmt: skip
    ids = [t.trade_key for t in spot]
    assert len(ids) == 69 and ids == list(range(338476307, 338476307 + 69))
    first = normalise_trade(spot[0])
    assert (first.symbol, first.base, first.quote) == ("BTC/USDT", "BTC", "USDT")
    assert (first.price, first.quantity, first.side) == (Decimal("30236"), Decimal("0.0002"), "buy")
    assert first.quote_quantity == Decimal("6.0472")
    assert first.message_id == "okx:BTC-USDT:338476307" and first.trade_id == "338476307"
    assert int(first.exchange_ts.timestamp() * 1000) == 1652459224818
    assert first.exchange_ts.microsecond == 818_000


def test_the_recorded_events_and_other_channels() -> None:
    """Subscribe events are confirmations naming their instrument; tickers are another kind."""
    parsed = [parse_frame(f, RECORDED) for f in received_frames("OKX.ws.1.0.trades")]
    controls = [c for p in parsed for c in p.controls]
    assert len(controls) == 18 and {c.kind for c in controls} == {ControlKind.SUBSCRIBED}
    assert {c.symbol for c in controls} == {"BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT"}
    assert {p.unknown_kind for p in parsed} == {None, "channel:tickers"}
    assert not any(p.malformed for p in parsed)


def test_the_documented_all_trades_push_and_events() -> None:
    """The documentation's trades-all push, subscribe event and error parse as documented."""
    (trade,) = parse_frame(DOC_ALL_TRADES, ENVELOPE).trades
    assert dict(trade.fields) == {
        "instId": "BTC-USDT", "tradeId": "130639474", "px": "42219.9", "sz": "0.12060306",
        "side": "buy", "source": "0", "ts": "1630048897897", "channel": "trades-all",
    }  # fmt: skip
    (ack,) = parse_frame(DOC_SUBSCRIBED, ENVELOPE).controls
    assert (ack.kind, ack.symbol, ack.detail["connId"]) == (
        ControlKind.SUBSCRIBED, "BTC-USDT", "a4d3ae55"
    )  # fmt: skip
    (error,) = parse_frame(DOC_ERROR, ENVELOPE).controls
    assert (error.kind, error.detail["code"]) == (ControlKind.ERROR, "60012")
    (unknown,) = parse_frame(CAPTURED_UNKNOWN, ENVELOPE).controls
    assert unknown.detail["code"] == "60018" and "BTC-INEXISTANT" in str(unknown.detail["message"])
    assert parse_frame("pong", ENVELOPE).controls[0].kind == ControlKind.PONG


def test_a_trades_row_aggregating_several_trades_is_refused_with_its_text() -> None:
    """The documented trades example stands for three trades: it cannot be one row, so it is a
    dead letter naming why; the same row with count 1 is its trade."""
    parsed = parse_frame(DOC_TRADES, ENVELOPE)
    assert parsed.malformed is not None and "aggregates '3' trades" in parsed.malformed.error
    (single,) = parse_frame(DOC_TRADES.replace('"count": "3"', '"count": "1"'), ENVELOPE).trades
    assert (single.fields["seqId"], single.fields["count"]) == (1234, "1")


@pytest.mark.parametrize("trade_id", ["0130639474", "-1", "1.5", "9223372036854775808", "", "١٢"])
def test_a_trade_id_that_is_not_an_integer_id_is_malformed(trade_id: str) -> None:
    """Ids feed the gap detection: one that is not a plain 64-bit integer is refused."""
    frame = DOC_ALL_TRADES.replace('"130639474"', json.dumps(trade_id))
    assert trade_key(trade_id) is None
    assert parse_frame(frame, ENVELOPE).malformed is not None
    assert generic_frame(frame, ENVELOPE).malformed is not None


@SETTINGS
@given(rows=st.lists(trade_fields(), min_size=1, max_size=3))
def test_rendered_pushes_parse_back_to_their_fields_on_both_paths(
    rows: list[dict[str, FieldValue]],
) -> None:
    """render then parse is the identity, and the fast path agrees with the generic one."""
    inst_id = str(rows[0]["instId"])
    rows = [{**row, "instId": inst_id} for row in rows]
    frame = wire.render_trades(wire.ALL_TRADES, inst_id, rows)
    fast, generic = parse_push(frame, ENVELOPE), generic_frame(frame, ENVELOPE)
    assert fast == generic
    assert [dict(t.fields) for t in generic.trades] == [
        {**r, "channel": "trades-all"} for r in rows
    ]
    template = wire.trade_template(wire.ALL_TRADES, inst_id)
    assert template is not None
    row = rows[0]
    values = tuple(row[k] for k in ("tradeId", "px", "sz", "side", "source", "ts"))
    assert template % values == wire.render_trades(wire.ALL_TRADES, inst_id, [row])


arbitrary = st.one_of(st.text(), json_values.map(json.dumps))


@SETTINGS
@given(text=arbitrary)
def test_the_parser_never_raises_and_both_paths_agree(text: str) -> None:
    """Whatever text arrives, the OKX parser never raises, its fast path agrees with the generic
    one, and a malformed frame keeps its text."""
    parsed = parse_frame(text, ENVELOPE)
    assert parsed == generic_frame(text, ENVELOPE)
    if parsed.malformed is not None:
        assert parsed.malformed.raw == text
    assert parsed == ParsedFrame() or any(
        (parsed.trades, parsed.controls, parsed.malformed, parsed.unknown_kind)
    )


def test_an_oversized_frame_is_malformed_and_cut() -> None:
    """An OKX frame over the size limit is malformed and cut to the limit."""
    parsed = parse_frame(DOC_ALL_TRADES + " " * 2000, ENVELOPE, 1000)
    assert parsed.malformed is not None and len(parsed.malformed.raw) == 1000
