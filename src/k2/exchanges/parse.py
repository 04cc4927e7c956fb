"""What every exchange's frame parser shares: the size check, the fast path, JSON and refusals.

An exchange's ``parse.py`` turns one received frame (text) into a
:class:`~k2.exchanges.base.ParsedFrame` and never raises on any input. The steps around its own
reading are the same for every exchange and live here once: a frame over the size limit is
malformed before anything reads it; the exchange's typed fast path (msgspec, one C pass) takes
the common trade frame when it has one; anything else is read as JSON (floats as ``Decimal``,
never ``float``; ``NaN``/``Infinity`` refused) and handed to the exchange's reader, whose
:func:`reject` turns the frame into a malformed one with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import NoReturn

from k2.errors import MalformedFrameError
from k2.exchanges.base import Envelope, Malformed, ParsedFrame

DEFAULT_MAX_FRAME_CHARS = 1_000_000

FastPath = Callable[[str, Envelope], ParsedFrame | None]  # None: the generic reader decides
Reader = Callable[[object, Envelope], ParsedFrame]  # the frame's JSON value → what it holds


def reject(reason: str) -> NoReturn:
    """Refuse the frame being read: it becomes malformed with ``reason``."""
    raise MalformedFrameError(reason)


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number K2 accepts")


def load_json(text: str) -> object:
    """The frame's JSON value, numbers exact (``Decimal``, ``int``); refuses invalid JSON."""
    try:
        return json.loads(text, parse_float=Decimal, parse_int=int, parse_constant=_no_constant)
    except (ValueError, RecursionError, ArithmeticError) as exc:
        reject(f"invalid JSON: {exc}")


def malformed(text: str, reason: str, envelope: Envelope, max_chars: int) -> ParsedFrame:
    """The frame as a dead letter: its text (cut at ``max_chars``) and why."""
    return ParsedFrame(malformed=Malformed(raw=text[:max_chars], error=reason, envelope=envelope))


def read_frame(text: str, envelope: Envelope, max_chars: int, read: Reader) -> ParsedFrame:
    """The generic path: ``read`` over the frame's JSON, or the frame as malformed."""
    try:
        return read(load_json(text), envelope)
    except MalformedFrameError as exc:
        return malformed(text, str(exc), envelope, max_chars)


def parse_with(
    text: str, envelope: Envelope, max_chars: int, fast: FastPath | None, read: Reader
) -> ParsedFrame:
    """One frame through the size check, then ``fast`` (when the exchange has one), then
    :func:`read_frame`: the skeleton of every exchange's ``parse_frame``."""
    if len(text) > max_chars:
        reason = f"frame of {len(text)} characters exceeds the limit of {max_chars} (truncated)"
        return malformed(text, reason, envelope, max_chars)
    if fast is not None:
        found = fast(text, envelope)
        if found is not None:
            return found
    return read_frame(text, envelope, max_chars, read)
