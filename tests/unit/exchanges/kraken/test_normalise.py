"""Kraken raw trades become unified trades: canonical symbols, taker side, exact decimals and
times, message ids that are the same every time the same trade is received, and the same trade
from a raw record as from the frame."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2.domain import micros_from_datetime
from k2.errors import TradeInvalidError
from k2.exchanges.base import Envelope, FieldValue, Protocol_, RawTrade
from k2.exchanges.kraken import normalise as kraken
from k2.exchanges.kraken import wire as kraken_wire
from k2.exchanges.kraken.normalise import (
    V1OccurrenceCounter,
    normalise_trade,
    parse_rfc3339_micros,
    parse_v1_time_micros,
    v1_message_id,
)
from k2.exchanges.kraken.normalise import normalise_trade as normalise_kraken
from k2.exchanges.kraken.parse import parse_v1_frame
from tests.unit.exchanges.kraken.strategies import (
    kraken_v1_fields,
    kraken_v1_pairs,
    kraken_v2_fields,
)
from tests.unit.exchanges.recordings import received_frames
from tests.unit.exchanges.records import record_of

KRAKEN_V1 = Envelope(
    received_us=1_618_678_142_592_855, connection_id="c", position=0, protocol="kraken-v1"
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def envelope(protocol: Protocol_) -> Envelope:
    return Envelope(
        received_us=1_700_000_000_123_456, connection_id="c", position=0, protocol=protocol
    )


def v1(pair: str, price: str, volume: str, time: str, side: str = "b", kind: str = "l") -> RawTrade:
    fields = kraken_wire.v1_trade_fields(price, volume, time, side, kind)
    return RawTrade("kraken", pair, None, fields, envelope("kraken-v1"))


def v2(symbol: str = "BTC/USD", trade_id: int = 7, **changes: FieldValue) -> RawTrade:
    fields = kraken_wire.v2_trade_fields(
        symbol, "sell", "65000.10", "0.00012", "market", trade_id, "2024-05-19T19:11:23.034030Z"
    )
    fields.update(changes)
    return RawTrade("kraken", symbol, trade_id, fields, envelope("kraken-v2"))


def test_legacy_kraken_asset_codes_become_canonical() -> None:
    """Kraken's legacy asset codes reach Silver as canonical symbols (XBT/USD is BTC/USD, XDG is
    DOGE), the pair as Kraken spells it kept beside them."""
    trade = normalise_trade(v1("XBT/USD", "1", "1", "1.0"))
    assert (trade.symbol, trade.base, trade.quote, trade.exchange_symbol) == (
        "BTC/USD",
        "BTC",
        "USD",
        "XBT/USD",
    )
    assert normalise_trade(v1("XDG/EUR", "1", "1", "1.0")).symbol == "DOGE/EUR"


def test_kraken_v1_side_and_order_type_letters_are_spelled_out() -> None:
    """Kraken v1's one-letter side and order type become buy or sell and limit or market."""
    assert normalise_trade(v1("XBT/USD", "1", "1", "1.0", "b", "l")).side == "buy"
    sold = normalise_trade(v1("XBT/USD", "1", "1", "1.0", "s", "m"))
    assert (sold.side, sold.order_type) == ("sell", "market")


def test_decimals_are_exact_and_quote_quantity_is_the_exact_product() -> None:
    """Price and quantity keep every digit Kraken sent, and the quote quantity is their exact
    product even past 28 significant digits."""
    price, volume = "123456789012.123456789012", "0.000000000123456789"
    trade = normalise_trade(v1("XBT/USD", price, volume, "1.0"))
    assert trade.price == Decimal(price)
    assert trade.quantity == Decimal(volume)
    # 24 + 9 significant digits: more than the default 28-digit context would keep
    exact = Decimal(f"{123456789012123456789012 * 123456789}E-30")  # exact: no context
    assert trade.quote_quantity == exact
    assert len(trade.quote_quantity.as_tuple().digits) > 28


def test_quote_quantity_stays_exact_beyond_a_hundred_digits() -> None:
    """The quote quantity stays the exact product of price and quantity beyond a hundred digits."""
    price, volume = "9" * 60 + ".5", "0." + "7" * 59
    trade = normalise_trade(v1("XBT/USD", price, volume, "1.0"))
    assert trade.quote_quantity == Decimal(f"{int('9' * 60 + '5') * int('7' * 59)}E-60")


def test_kraken_v1_time_string_is_split_exactly() -> None:
    """A Kraken v1 time string becomes its exact microsecond, however many decimals it has, and the
    receive time is kept beside it."""
    assert parse_v1_time_micros("1534614057.321597") == 1_534_614_057_321_597
    assert parse_v1_time_micros("1534614057.3") == 1_534_614_057_300_000
    assert parse_v1_time_micros("1534614057") == 1_534_614_057_000_000
    trade = normalise_trade(v1("XBT/USD", "1", "1", "1534614057.321597"))
    assert micros_from_datetime(trade.exchange_ts) == 1_534_614_057_321_597
    assert micros_from_datetime(trade.received_ts) == 1_700_000_000_123_456


def test_kraken_v2_rfc3339_is_read_to_the_microsecond() -> None:
    """A Kraken v2 RFC 3339 timestamp is read to the microsecond as a timezone-aware UTC time."""
    assert parse_rfc3339_micros("2024-05-19T19:11:23.034030Z") == 1_716_145_883_034_030
    trade = normalise_trade(v2())
    assert micros_from_datetime(trade.exchange_ts) == 1_716_145_883_034_030
    assert trade.exchange_ts.tzinfo is not None


def test_message_ids_name_exchange_symbol_and_trade_id() -> None:
    """A Kraken v2 trade's message_id is its exchange, pair and trade id."""
    assert normalise_trade(v2(trade_id=4665846)).message_id == "kraken:BTC/USD:4665846"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (v1("XBT/USD", "1e5", "1", "1.0"), "price"),
        (v1("XBT/USD", "NaN", "1", "1.0"), "price"),
        (v1("XBT/USD", "1", " 1", "1.0"), "quantity"),
        (v1("XBT/USD", "1", "1", "1.0", side="x"), "side"),
        (v1("XBT/USD", "1", "1", "yesterday"), "time"),
        (v2(timestamp="2024-05-19T19:11:23"), "time"),
    ],
)
def test_unreadable_values_raise_with_a_reason(raw: RawTrade, reason: str) -> None:
    """A Kraken trade with a value K2 cannot read exactly (exponent, NaN, padding, unknown side, bad
    time) is refused with the name of that value."""
    with pytest.raises(TradeInvalidError) as caught:
        normalise_trade(raw)
    assert caught.value.reason == reason


def test_v1_message_id_is_deterministic() -> None:
    """A Kraken v1 trade, which has no id, gets the same message_id every time it is received."""
    trade = v1("XBT/USD", "5541.20000", "0.15850568", "1534614057.321597", "s", "l")
    first = normalise_trade(trade).message_id
    assert first == normalise_trade(trade).message_id
    assert first == v1_message_id("XBT/USD", trade.fields, 0)
    assert first.startswith("kraken:XBT/USD:") and first.endswith("-0")


def _ids(counter: V1OccurrenceCounter, trades: list[RawTrade]) -> list[str]:
    return [normalise_trade(counter.assign(trade)).message_id for trade in trades]


def test_two_genuinely_identical_v1_trades_get_different_ids() -> None:
    """Two identical Kraken v1 trades in one feed are two trades, each with its own message_id."""
    fill = v1("XBT/USD", "100.0", "0.5", "1700000000.000001")
    ids = _ids(V1OccurrenceCounter(), [fill, fill])
    assert ids[0] != ids[1]
    assert [i.rsplit("-", 1)[1] for i in ids] == ["0", "1"]


def test_a_resent_v1_snapshot_maps_to_the_same_ids() -> None:
    """The recent trades Kraken v1 re-sends after a reconnect get the message_ids they had when
    first received, so Gold keeps them once."""
    a = v1("XBT/USD", "100.0", "0.5", "1700000000.000001")
    b = v1("XBT/USD", "100.1", "0.2", "1700000000.000002")
    c = v1("XBT/USD", "100.2", "0.3", "1700000000.000003")
    other_pair_b = v1("XBT/EUR", "100.1", "0.2", "1700000000.000002")
    live = _ids(V1OccurrenceCounter(), [a, b, b, other_pair_b, c])
    # after a reconnect Kraken re-sends the recent trades; the client counts afresh
    snapshot = _ids(V1OccurrenceCounter(), [b, b, c])
    assert snapshot == [live[1], live[2], live[4]]
    assert len(set(live)) == 5


def test_occurrence_counts_restart_when_the_time_moves_on() -> None:
    """The count that tells identical Kraken v1 trades apart restarts when the trade time moves
    on."""
    same = v1("XBT/USD", "100.0", "0.5", "1700000000.000001")
    later = v1("XBT/USD", "100.0", "0.5", "1700000000.000002")
    counter = V1OccurrenceCounter()
    assert [counter.assign(t).occurrence for t in (same, same, later, later)] == [0, 1, 0, 1]


def test_a_snapshot_starting_inside_a_group_of_identical_trades_reuses_delivered_ids() -> None:
    """A re-sent snapshot that starts inside a group of identical Kraken v1 trades maps to ids
    already delivered, so a copy is dropped, never invented."""
    # The documented limit of the v1 rule: the window's first copy is numbered 0 again, so its
    # id is that of a copy already delivered (it is dropped as a duplicate, never invented).
    fill = v1("XBT/USD", "100.0", "0.5", "1700000000.000001")
    live = _ids(V1OccurrenceCounter(), [fill, fill])
    assert _ids(V1OccurrenceCounter(), [fill]) == [live[0]]


def test_kraken_v1_recorded_trades_normalise_exactly() -> None:
    """The trades of a real Kraken v1 session normalise to exact decimals, taker side, order type
    and microsecond times, each with its own message_id."""
    counter = V1OccurrenceCounter()
    frames = received_frames("KRAKEN.ws.48.0")
    trades = [counter.assign(t) for f in frames for t in parse_v1_frame(f, KRAKEN_V1).trades]
    unified = [normalise_kraken(trade) for trade in trades]
    first = unified[0]
    assert (first.symbol, first.base, first.quote) == ("XMR/USD", "XMR", "USD")
    assert first.price == Decimal("354.11000000")
    assert first.quote_quantity == Decimal("354.11") * Decimal("0.89594024")
    assert first.side == "sell"
    assert first.order_type == "limit"
    assert first.trade_id is None
    assert first.exchange_ts.timestamp() == pytest.approx(1618678142.557535)
    assert first.exchange_ts.microsecond == 557535
    assert len({trade.message_id for trade in unified}) == 10


def _envelope(protocol: Protocol_, received_us: int = 1_700_000_000_123_456) -> Envelope:
    return Envelope(received_us, "conn-1", 7, protocol)


@SETTINGS
@given(pair=kraken_v1_pairs, fields=kraken_v1_fields(), occurrence=st.integers(0, 3))
def test_kraken_v1_record_normalises_like_its_trade(
    pair: str, fields: dict[str, FieldValue], occurrence: int
) -> None:
    """Kraken v1: same unified trade, message_id included (tuple hash and occurrence)."""
    raw = RawTrade("kraken", pair, None, fields, _envelope("kraken-v1"), occurrence=occurrence)
    record = record_of("kraken", raw, protocol="kraken-v1")
    assert kraken.trade_from_record(record) == kraken.normalise_trade(raw)


@SETTINGS
@given(fields=kraken_v2_fields(), snapshot=st.booleans())
def test_kraken_v2_record_normalises_like_its_trade(
    fields: dict[str, FieldValue], snapshot: bool
) -> None:
    """Kraken v2: same unified trade."""
    trade_id = fields["trade_id"]
    assert isinstance(trade_id, int)
    raw = RawTrade(
        "kraken", str(fields["symbol"]), trade_id, fields, _envelope("kraken-v2"), snapshot=snapshot
    )
    assert kraken.trade_from_record(record_of("kraken", raw)) == kraken.normalise_trade(raw)


def test_kraken_recorded_session_records_normalise_like_their_trades() -> None:
    """Every trade of the recorded Kraken v1 session survives the record round trip."""
    counter = V1OccurrenceCounter()
    trades = [
        counter.assign(trade)
        for frame in received_frames("KRAKEN.ws.48.0")
        for trade in parse_v1_frame(frame, _envelope("kraken-v1")).trades
    ]
    assert len(trades) == 10
    for raw in trades:
        record = record_of("kraken", raw, protocol="kraken-v1")
        assert kraken.trade_from_record(record) == kraken.normalise_trade(raw)
