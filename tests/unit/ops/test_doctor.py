"""`k2 doctor` checks the stages in data-flow order and stops at the first broken one."""

from __future__ import annotations

from k2.cli.output import doctor_line
from k2.ops.doctor import Broken, Stage, run_stages


def test_doctor_stops_at_the_first_broken_stage() -> None:
    """Stages after the first broken one are not reached (and not run)."""
    ran = []

    def ok(name: str) -> Stage:
        return Stage(name, name, lambda: ran.append(name) or "fine")

    def broken() -> str:
        raise Broken("the broker does not answer", "start it")

    report = run_stages([ok("a"), Stage("b", "b", broken), ok("c")])
    assert [c.state for c in report.checks] == ["ok", "failed", "not reached"]
    assert ran == ["a"] and report.broken is not None and report.broken.stage == "b"
    assert report.as_json()["broken_stage"] == "b"
    assert doctor_line(report.checks[1]) == [
        "✗ b",
        "    cause: the broker does not answer",
        "    fix:   start it",
    ]
    assert (
        doctor_line(report.checks[2])[0].startswith("– c")
        and "not reached" in (doctor_line(report.checks[2])[0])
    )
