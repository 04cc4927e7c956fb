"""Reading the values exchanges send as text, exactly, in Python and in Spark SQL alike.

Decimal text becomes :class:`~decimal.Decimal` and RFC 3339 times become integer microseconds
without a float in between. Each rule is written once here, as a Python function and as the
Spark SQL fragment that Silver runs, and the Silver differential test holds the two equal: a
value one side refuses, the other refuses too.
"""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import datetime
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, Inexact

from k2.domain import micros_from_datetime
from k2.errors import TradeInvalidError
from k2.exchanges import sql

_DECIMAL = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_WIDE = Context(prec=100, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact])
# RFC 3339 with an upper-case T and Z or a numeric offset, any number of fraction digits (Kraken
# sends µs, Coinbase ms to ns); fromisoformat then checks the calendar and cuts the fraction at
# µs. Anything looser would read differently in Spark.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)", re.ASCII
)


def decimal_of(text: object, what: str, reason: str) -> Decimal:
    """Plain non-negative decimal text (``"65000.5"``) as a Decimal; anything else (signs,
    exponents, spaces, non-ASCII digits, a number that is not text) is refused with ``reason``."""
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise TradeInvalidError(f"{what} {text!r} is not a decimal", reason)
    return Decimal(text)


def exact_product(left: Decimal, right: Decimal) -> Decimal:
    """``left * right`` exactly: a wide context that traps rounding, sized to fit if it would."""
    try:
        return _WIDE.multiply(left, right)
    except Inexact:
        digits = len(left.as_tuple().digits) + len(right.as_tuple().digits)
        return Context(prec=digits, Emax=MAX_EMAX, Emin=MIN_EMIN).multiply(left, right)


def rfc3339_micros(text: str, what: str) -> int:
    """``"2023-09-25T07:48:36.925533Z"`` → µs since the epoch; a time zone is required and
    fraction digits beyond the microsecond are cut off, never rounded."""
    if _RFC3339.fullmatch(text):
        with suppress(ValueError, OverflowError):  # no such day, or beyond the calendar in UTC
            return micros_from_datetime(datetime.fromisoformat(text))
    raise TradeInvalidError(f"{what} {text!r} is not RFC 3339", "time")


# --- the same rules as Spark SQL ---------------------------------------------------------------

_RFC3339_SQL = (
    "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?"
    "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)


def rfc3339_micros_sql(column: str) -> str:
    """The µs since the epoch of an RFC 3339 text column, as :func:`rfc3339_micros` reads it
    (NULL where Python refuses). Once the text matches whole its parts sit at fixed places: the
    zone is ``Z`` or the last six characters, the fraction what lies between the point and the
    zone, cut at six digits and padded."""
    zone_chars = f"(CASE WHEN endswith({column}, 'Z') THEN 1 ELSE 6 END)"
    fraction = (
        f"CASE WHEN substr({column}, 20, 1) = '.' "
        f"THEN substr({column}, 21, length({column}) - 20 - {zone_chars}) ELSE '' END"
    )
    micros = f"CAST(rpad(substr({fraction}, 1, 6), 6, '0') AS BIGINT)"
    offset_s = (
        f"CASE WHEN endswith({column}, 'Z') THEN 0 "
        f"ELSE (CASE WHEN substr({column}, -6, 1) = '-' THEN -1 ELSE 1 END)"
        f" * (CAST(substr({column}, -5, 2) AS INT) * 3600 "
        f"+ CAST(substr({column}, -2, 2) AS INT) * 60) END"
    )
    seconds = (
        f"unix_micros(try_make_timestamp(CAST(substr({column}, 1, 4) AS INT), "
        f"CAST(substr({column}, 6, 2) AS INT), CAST(substr({column}, 9, 2) AS INT), "
        f"CAST(substr({column}, 12, 2) AS INT), CAST(substr({column}, 15, 2) AS INT), "
        f"CAST(substr({column}, 18, 2) AS DECIMAL(8, 6)), 'UTC'))"
    )
    return (
        f"CASE WHEN {sql.full_match(column, _RFC3339_SQL)} THEN try_add(try_add("
        f"{seconds}, {micros}), -1000000L * ({offset_s})) END"
    )
