"""Opening the catalog ``k2``: what every process does first, often several at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog.sql import SqlCatalogBaseTable

from k2.config import Settings, StackSettings
from k2.lake.catalog import open_catalog


def _settings(home: Path) -> Settings:
    return Settings(stack=StackSettings(home=home), _env_file=None)  # type: ignore[call-arg]


def test_a_process_that_loses_the_race_to_create_the_catalog_tables_still_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes opening a new catalog at once (``k2 run`` starts the API and the job
    together) both find its tables missing; the one whose create comes second opens it too."""
    metadata = SqlCatalogBaseTable.metadata
    create_all = metadata.create_all
    raced: list[bool] = []

    def other_process_first(engine: Any, *args: Any, **kwargs: Any) -> None:
        if not raced:
            raced.append(True)
            create_all(engine)  # the other process creates the tables between check and create
            create_all(engine, checkfirst=False)  # this one's create, as it was about to run
        create_all(engine, *args, **kwargs)

    monkeypatch.setattr(metadata, "create_all", other_process_first)
    catalog = open_catalog(_settings(tmp_path))
    assert raced
    catalog.create_namespace("bronze")
    assert ("bronze",) in open_catalog(_settings(tmp_path)).list_namespaces()
