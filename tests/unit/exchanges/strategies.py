"""Hypothesis strategies every exchange's tests share: exchange times in ms and µs, decimal text as
exchanges send it, and arbitrary JSON under the keys trade frames use."""

from __future__ import annotations

import json

from hypothesis import strategies as st

# 2001-09-09 .. 2286: the range where ms and µs magnitudes are unambiguous.
micros = st.integers(min_value=1_000_000_000_000_000, max_value=9_999_999_999_999_999)
millis = st.integers(min_value=1_000_000_000_000, max_value=9_999_999_999_999)


@st.composite
def decimal_texts(draw: st.DrawFn) -> str:
    """Decimal text as exchanges send it: plain notation, any number of decimals, zeros kept."""
    whole = draw(st.integers(min_value=0, max_value=10**12))
    decimals = draw(st.text(alphabet="0123456789", max_size=12))
    return f"{whole}.{decimals}" if decimals else str(whole)


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

# Any text a socket may deliver: words, decoded bytes, JSON.
arbitrary_text = st.one_of(
    st.text(),
    st.binary().map(lambda b: b.decode("utf-8", "replace")),
    json_values.map(json.dumps),
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
