"""Waiting in tests: poll a condition until a deadline, and say what was seen when it never held.

A test that waits for a running system (a table filling up, a service becoming healthy) polls
with a deadline; when the deadline passes, the failure names what it waited for, the last value
the condition returned, and whatever the caller knows that explains it (the log tail of the part
it waited on), so a failure explains itself without a rerun.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Pending:
    """A check's answer while its condition does not hold yet: false, with what it saw."""

    seen: object

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return repr(self.seen)


class Seen:
    """What a condition returned last: a false value, or the exception it raised."""

    def __init__(self) -> None:
        self.value: object = None
        self.polls = 0

    def __str__(self) -> str:
        return f"after {self.polls} polls the last value was {self.value!r}"


def _failure(what: str, timeout_s: float, seen: Seen, context: Callable[[], str] | None) -> str:
    message = f"timed out after {timeout_s:.0f} s waiting for {what}: {seen}"
    if context is not None:
        try:
            message += f"\n{context()}"
        except Exception as exc:  # noqa: BLE001 - the explanation must never hide the failure itself
            message += f"\n(could not describe the state: {exc!r})"
    return message


def wait_until(
    check: Callable[[], T],
    timeout_s: float,
    what: str,
    *,
    every_s: float = 0.2,
    context: Callable[[], str] | None = None,
) -> T:
    """Poll ``check`` until it returns a true value, and return that value.

    ``check`` may raise AssertionError to fail at once (a part that died); any other value is
    kept as the last one seen. After ``timeout_s`` the AssertionError names ``what``, the last
    value and ``context()``.
    """
    deadline = time.monotonic() + timeout_s
    seen = Seen()
    while True:
        value = check()
        seen.polls += 1
        if value:
            return value
        seen.value = value
        if time.monotonic() >= deadline:
            raise AssertionError(_failure(what, timeout_s, seen, context))
        time.sleep(every_s)


async def wait_until_async(
    check: Callable[[], T | Awaitable[T]],
    timeout_s: float,
    what: str,
    *,
    every_s: float = 0.2,
    context: Callable[[], str] | None = None,
) -> T:
    """:func:`wait_until` for a test running on an event loop (the loop keeps running)."""
    deadline = time.monotonic() + timeout_s
    seen = Seen()
    while True:
        value = check()
        if isinstance(value, Awaitable):
            value = await value
        seen.polls += 1
        if value:
            return value  # type: ignore[return-value]
        seen.value = value
        if time.monotonic() >= deadline:
            raise AssertionError(_failure(what, timeout_s, seen, context))
        await asyncio.sleep(every_s)


def log_tail(path: Path, chars: int = 3000) -> str:
    """The end of a log file, headed by its name (or a line saying it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"--- {path}: {exc.strerror}"
    return f"--- last {min(chars, len(text))} characters of {path}:\n{text[-chars:]}"
