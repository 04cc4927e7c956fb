"""The reference pages of the documentation site, generated from K2's code.

Each page is built from what the code defines (the settings classes, the table definitions, the
metrics registries and alert rules, the API application) with the default settings, so a page
cannot disagree with the code it describes. Nothing here needs a running service.
"""

from __future__ import annotations

from pathlib import Path

from generators.api import OPENAPI_FILE, api_page, openapi_document
from generators.defaults import default_settings
from generators.metrics import metrics_page
from generators.settings import settings_page
from generators.tables import tables_page


def pages(root: Path) -> dict[str, str]:
    """Every generated file by its path in the site; ``root`` is the checkout."""
    settings = default_settings()
    return {
        "reference/settings.md": settings_page(root),
        "reference/tables.md": tables_page(settings),
        "reference/metrics.md": metrics_page(settings),
        "reference/api.md": api_page(settings),
        f"reference/{OPENAPI_FILE}": openapi_document(settings),
    }
