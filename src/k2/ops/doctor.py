"""``k2 doctor``: check each stage in the order data flows and name the first broken one.

Stages (:data:`k2.ops.checks.STAGES`): settings valid → Java and JVM artifacts → broker →
registry and K2's subjects → catalog and namespaces → the exchange (or simulator): reference data
and a live trade on a fresh subscription → each ingest up and delivering → raw topic end offsets
moving → the streaming job committing with a bounded lag → every layer's newest row fresh →
every running service on the installed build. The first stage that fails stops the run: its
cause and its fix are one line each, and the stages after it are "not reached".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

State = Literal["ok", "failed", "not reached"]


class Broken(Exception):  # noqa: N818 - a stage's verdict, not an error of the program
    """A stage is broken: what is wrong, and what to do about it."""

    def __init__(self, cause: str, fix: str) -> None:
        super().__init__(cause)
        self.cause = cause
        self.fix = fix


@dataclass(frozen=True)
class Check:
    """One stage's result: ``detail`` says what was seen when it passed."""

    stage: str
    title: str
    state: State
    detail: str = ""
    cause: str | None = None
    fix: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Report:
    checks: list[Check]
    seconds: float

    @property
    def broken(self) -> Check | None:
        """The first broken stage, or None when every stage passed."""
        return next((check for check in self.checks if check.state == "failed"), None)

    def as_json(self) -> dict[str, Any]:
        broken = self.broken
        return {
            "healthy": broken is None,
            "broken_stage": broken.stage if broken else None,
            "seconds": round(self.seconds, 2),
            "checks": [asdict(check) for check in self.checks],
        }


@dataclass(frozen=True)
class Stage:
    """A stage: its id, the title shown, and the check (it returns a detail or raises Broken)."""

    stage: str
    title: str
    run: Callable[[], str]


def run_stages(stages: list[Stage], on_check: Callable[[Check], None] | None = None) -> Report:
    """Run ``stages`` in order until one is broken; report each as it finishes."""
    started = time.monotonic()
    checks: list[Check] = []
    broken = False
    for stage in stages:
        if broken:
            check = Check(stage.stage, stage.title, "not reached")
        else:
            began = time.monotonic()
            try:
                check = Check(stage.stage, stage.title, "ok", stage.run())
            except Broken as exc:
                check = Check(stage.stage, stage.title, "failed", cause=exc.cause, fix=exc.fix)
                broken = True
            check = Check(**{**asdict(check), "seconds": round(time.monotonic() - began, 2)})
        checks.append(check)
        if on_check is not None:
            on_check(check)
    return Report(checks, time.monotonic() - started)
