"""A component's build: another git sha than the one installed is stale code, said in words."""

from __future__ import annotations

from k2.ops.components import stale_reason


def test_a_service_on_another_sha_is_stale_in_words() -> None:
    """Another git sha is stale code; an unknown one (no git checkout) is not judged."""
    assert "runs stale code: git sha abc, installed def" in (
        stale_reason({"git_sha": "abc"}, "def") or ""
    )
    assert stale_reason({"git_sha": "abc"}, "abc") is None
    assert stale_reason({"git_sha": "unknown"}, "abc") is None
