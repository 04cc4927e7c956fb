"""The documentation's pages: the hand-written ones as files, the generated ones as the site's
build makes them."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def written_pages() -> dict[str, str]:
    """README.md and every Markdown file of docs/, by path from the checkout."""
    paths = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    return {str(path.relative_to(ROOT)): path.read_text() for path in paths}


@pytest.fixture(scope="session")
def generators() -> Iterator[ModuleType]:
    """docs/generators, the package the MkDocs hook runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(DOCS))
        yield importlib.import_module("generators")


@pytest.fixture(scope="session")
def generated_pages(generators: ModuleType) -> dict[str, str]:
    """The reference pages as the MkDocs hook generates them, by path in the site."""
    pages: dict[str, str] = generators.pages(ROOT)
    return pages
