"""Hypothesis strategies for trades as each venue sends them."""

from __future__ import annotations

from hypothesis import strategies as st

from k2.exchanges.base import FieldValue
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.kraken import wire as kraken_wire

# 2001-09-09 .. 2286: the range where ms and µs magnitudes are unambiguous.
micros = st.integers(min_value=1_000_000_000_000_000, max_value=9_999_999_999_999_999)
millis = st.integers(min_value=1_000_000_000_000, max_value=9_999_999_999_999)


@st.composite
def decimal_texts(draw: st.DrawFn) -> str:
    """Decimal text as venues send it: plain notation, any number of decimals, zeros kept."""
    whole = draw(st.integers(min_value=0, max_value=10**12))
    decimals = draw(st.text(alphabet="0123456789", max_size=12))
    return f"{whole}.{decimals}" if decimals else str(whole)


kraken_v1_pairs = st.from_regex(r"[A-Z]{2,5}/[A-Z]{3,4}", fullmatch=True)
binance_symbols = st.from_regex(r"[A-Z]{2,6}(USDT|BTC|EUR)", fullmatch=True)


@st.composite
def kraken_v1_fields(draw: st.DrawFn) -> dict[str, FieldValue]:
    return kraken_wire.v1_trade_fields(
        price=draw(decimal_texts()),
        volume=draw(decimal_texts()),
        time=kraken_wire.format_time_v1(draw(micros)),
        side=draw(st.sampled_from(["b", "s"])),
        order_type=draw(st.sampled_from(["l", "m"])),
        misc=draw(st.text(max_size=5)),
    )


@st.composite
def kraken_v2_fields(draw: st.DrawFn) -> dict[str, FieldValue]:
    return kraken_wire.v2_trade_fields(
        symbol=draw(st.from_regex(r"[A-Z]{2,5}/[A-Z]{3,4}", fullmatch=True)),
        side=draw(st.sampled_from(["buy", "sell"])),
        price=draw(decimal_texts()),
        qty=draw(decimal_texts()),
        ord_type=draw(st.sampled_from(["limit", "market"])),
        trade_id=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        timestamp=kraken_wire.format_timestamp_v2(draw(micros)),
    )


@st.composite
def binance_trade_fields(draw: st.DrawFn) -> dict[str, FieldValue]:
    time = draw(st.one_of(millis, micros))
    return binance_wire.trade_fields(
        symbol=draw(binance_symbols),
        trade_id=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        price=draw(decimal_texts()),
        quantity=draw(decimal_texts()),
        trade_time=time,
        buyer_is_maker=draw(st.booleans()),
        event_time=time + draw(st.integers(min_value=0, max_value=5)),
    )


@st.composite
def binance_agg_trade_fields(draw: st.DrawFn) -> dict[str, FieldValue]:
    first = draw(st.integers(min_value=0, max_value=2**62))
    time = draw(st.one_of(millis, micros))
    return binance_wire.agg_trade_fields(
        symbol=draw(binance_symbols),
        agg_id=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        price=draw(decimal_texts()),
        quantity=draw(decimal_texts()),
        first_trade_id=first,
        last_trade_id=first + draw(st.integers(min_value=0, max_value=1000)),
        trade_time=time,
        buyer_is_maker=draw(st.booleans()),
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(
        st.sampled_from(
            [
                "e",
                "s",
                "t",
                "a",
                "p",
                "q",
                "T",
                "m",
                "stream",
                "data",
                "event",
                "channel",
                "type",
                "method",
                "result",
                "error",
                "id",
                "success",
                "symbol",
                "trade_id",
                "price",
                "qty",
                "pair",
                "status",
            ]
        )
        | st.text(max_size=4),
        children,
        max_size=8,
    ),
    max_leaves=30,
)


@st.composite
def json_mutations(draw: st.DrawFn, value: object) -> object:
    """``value`` (decoded JSON) with one member or element, at any depth, replaced by any JSON
    value, or removed: a frame that is almost right, the hardest kind for a reader."""
    if not isinstance(value, dict | list) or not value or not draw(st.booleans()):
        return draw(json_values)
    parts: dict[object, object] = dict(value) if isinstance(value, dict) else dict(enumerate(value))
    key = draw(st.sampled_from(list(parts)))
    if draw(st.booleans()):
        del parts[key]
    else:
        parts[key] = draw(json_mutations(parts[key]))
    return parts if isinstance(value, dict) else list(parts.values())
