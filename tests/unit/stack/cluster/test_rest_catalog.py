"""The REST catalog server's settings: each catalog property under the environment name it reads."""

from __future__ import annotations

import pytest

from k2.stack.cluster.rest_catalog import catalog_variable


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("catalog-impl", "CATALOG_CATALOG__IMPL"),
        ("s3.access-key-id", "CATALOG_S3_ACCESS__KEY__ID"),
        ("jdbc.schema-version", "CATALOG_JDBC_SCHEMA__VERSION"),
        ("rest.port", "CATALOG_REST_PORT"),
    ],
)
def test_rest_catalog_properties_become_its_environment_variables(name: str, variable: str) -> None:
    """Each catalog property reaches the REST server under the name it reads it from."""
    assert catalog_variable(name) == variable
