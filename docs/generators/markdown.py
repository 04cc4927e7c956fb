"""Markdown pieces the reference pages are made of: tables, code spans, docstrings as prose."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Sequence

# ``literal`` and :role:`target` (reStructuredText in K2's docstrings) become Markdown code spans.
_RST_LITERAL = re.compile(r"``(.+?)``")
_RST_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_CODE_SPAN = re.compile(r"(`+).+?\1")
# A setting named in running text (K2_API__PORT, K2_ALERTS__*), shown as code.
_SETTING = re.compile(r"\bK2_[A-Z0-9_]*[A-Z0-9](?:__\*)?")


def text(source: str) -> str:
    """Running text made safe for Markdown: outside code spans a ``<`` is escaped (so
    ``bronze.<exchange>_trades`` is not read as an HTML tag) and settings become code spans."""
    pieces = []
    done = 0
    for span in _CODE_SPAN.finditer(source):
        pieces.append(_plain(source[done : span.start()]))
        pieces.append(span.group(0))
        done = span.end()
    pieces.append(_plain(source[done:]))
    return "".join(pieces)


def _plain(source: str) -> str:
    escaped = source.replace("<", "&lt;")
    return _SETTING.sub(lambda match: f"`{match.group(0)}`", escaped)


def code(value: str) -> str:
    """``value`` as one inline code span, whatever backticks it holds."""
    fence = "``" if "`" in value else "`"
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def prose(docstring: str | None) -> str:
    """A docstring as Markdown: indentation removed, reStructuredText literals and roles as code
    spans."""
    if not docstring:
        return ""
    cleaned = inspect.cleandoc(docstring)
    cleaned = _RST_ROLE.sub(lambda match: f"`{match.group(1)}`", cleaned)
    return text(_RST_LITERAL.sub(lambda match: f"`{match.group(1)}`", cleaned))


def cell(value: str) -> str:
    """``value`` fit for one table cell: on one line, its pipes escaped (see :func:`text`)."""
    return text(" ".join(value.split())).replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table; every cell is passed through :func:`cell`."""
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    lines.extend("| " + " | ".join(cell(value) for value in row) + " |" for row in rows)
    return "\n".join(lines)


def anchor(name: str) -> str:
    """A heading id for ``name`` that no slug rule changes (``gold.trades`` → ``gold-trades``)."""
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")


def heading(level: int, title: str, name: str | None = None) -> str:
    """A heading; with ``name``, an explicit id (:func:`anchor`) that links can rely on."""
    explicit = f" {{ #{anchor(name)} }}" if name else ""
    return f"{'#' * level} {title}{explicit}"


def page(*blocks: str) -> str:
    """Blocks joined by blank lines, empty ones left out, ending with one newline."""
    return "\n\n".join(block.strip("\n") for block in blocks if block.strip()) + "\n"
