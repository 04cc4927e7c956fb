"""Spark SQL text for the exchanges' normalisation rules, built from the same facts as the Python.

Each exchange's ``normalise`` module states its normalisation twice: as Python functions over a raw
trade (the ingest and the live stream use them) and as SQL expressions over a Bronze row (the
Silver layer runs them in Spark, without a Python round trip per row). The SQL is built from the
same tables (side codes, order types, quote assets) with these helpers, and a differential test
holds the two equal. Plain text only: an exchange package never imports Spark.
"""

from __future__ import annotations

from collections.abc import Mapping

# Java's regex ``$`` also matches before a trailing line break; ``\z`` is the true end of input,
# as Python's ``fullmatch`` requires. (Two backslashes: the SQL parser unescapes one.)
END = "\\\\z"


def literal(text: str) -> str:
    """A Spark SQL string literal of ``text``."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def case(expression: str, mapping: Mapping[str, str]) -> str:
    """``CASE <expression> WHEN k THEN v ... END`` (NULL for anything else)."""
    branches = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in mapping.items())
    return f"CASE {expression} {branches} END"


def full_match(expression: str, pattern: str) -> str:
    """True when ``expression`` matches ``pattern`` whole (``pattern`` without anchors, written
    for Java regex and free of backslashes)."""
    return f"({expression} RLIKE '^(?:{pattern}){END}')"
