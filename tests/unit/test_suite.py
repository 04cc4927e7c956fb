"""The test suite's own rules, so they stay true: every test says in its docstring what users rely
on, and the unit tests mirror the code, one test module at the path of the module it tests."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

THIS = Path(__file__).resolve()
TESTS = THIS.parents[1]
UNIT = TESTS / "unit"
SOURCE = TESTS.parent / "src" / "k2"

Test = ast.FunctionDef | ast.AsyncFunctionDef


def _tests() -> Iterator[tuple[str, Test]]:
    """Every test function under tests/, with where it is."""
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, Test) and node.name.startswith("test"):
                yield f"{path.relative_to(TESTS.parent)}:{node.lineno} {node.name}", node


def test_every_test_says_what_users_rely_on() -> None:
    """Every test of the suite has a docstring stating the guarantee it checks, in plain words
    rather than as a description of the test."""
    docs = {where: (ast.get_docstring(node) or "").split() for where, node in _tests()}
    missing = [where for where, words in docs.items() if not words]
    assert not missing, "tests without a docstring saying what users rely on:\n" + "\n".join(
        missing
    )
    worded = [where for where, words in docs.items() if words[0] in ("Test", "Tests", "Testing")]
    assert not worded, "docstrings that describe the test, not the guarantee:\n" + "\n".join(worded)


def test_every_unit_test_module_mirrors_a_source_module() -> None:
    """A unit test module sits where the module it tests sits (``tests/unit/a/test_b.py`` for
    ``src/k2/a/b.py``, or for the package ``src/k2/a/b/``), so a module's tests are found by its
    path."""
    strays = []
    for path in sorted(UNIT.rglob("test_*.py")):
        if path == THIS:  # the suite's own rules mirror no source module
            continue
        folder = SOURCE / path.parent.relative_to(UNIT)
        name = path.stem.removeprefix("test_")
        if not ((folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file()):
            strays.append(str(path.relative_to(TESTS.parent)))
    assert not strays, "unit test modules at no source module's mirrored path:\n" + "\n".join(
        strays
    )
