"""Opening the catalog ``k2``: what every process does first, often several at once, and the
properties pyiceberg opens it with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog.sql import SqlCatalogBaseTable

from k2.config import LakeSettings, Settings, StackSettings
from k2.lake.catalog import open_catalog, pyiceberg_properties
from tests.unit.lake.object_store import KEYS, STORE, lake_settings


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
    catalog = open_catalog(_settings(tmp_path).lake_access())
    assert raced
    catalog.create_namespace("bronze")
    assert ("bronze",) in open_catalog(_settings(tmp_path).lake_access()).list_namespaces()


def test_pyiceberg_opens_the_same_store_and_a_rest_catalog_with_its_token(tmp_path: Path) -> None:
    """pyiceberg's catalog properties carry the store's options, and a REST catalog's token."""
    props = pyiceberg_properties(lake_settings(STORE, tmp_path).lake_access())
    assert props["warehouse"] == "s3://k2-lake/warehouse"
    assert props["s3.secret-access-key"] == "s3cr3t-value"
    rest = LakeSettings(
        catalog_type="rest",
        catalog_uri="http://127.0.0.1:8181",
        catalog_token="tok",  # type: ignore[arg-type]
        s3_endpoint="http://127.0.0.1:8333",
        **KEYS,  # type: ignore[arg-type]
    )
    props = pyiceberg_properties(lake_settings(rest, tmp_path).lake_access())
    assert props["type"] == "rest" and props["token"] == "tok" and "warehouse" not in props
