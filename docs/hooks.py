"""MkDocs hooks of K2's documentation site (registered under ``hooks:`` in ``mkdocs.yml``).

The reference pages (settings, tables, metrics and alerts, HTTP API) are generated from the code
on every build and exist only in the built site, so no stale copy can be committed: a file of
the same name in ``docs/`` stops the build.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files


def _generated(docs_dir: Path) -> dict[str, str]:
    """The pages, from a fresh interpreter (see ``generators/__main__.py``)."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "pages.json"
        result = subprocess.run(
            [sys.executable, "-m", "generators", str(output)],
            cwd=docs_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise PluginError(f"generating the reference pages failed:\n{result.stderr}")
        pages: dict[str, str] = json.loads(output.read_text())
    return pages


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated pages to the site's files."""
    for path, content in _generated(Path(config.docs_dir)).items():
        if files.get_file_from_path(path) is not None:
            raise PluginError(f"docs/{path} is generated when the site is built; delete the file")
        files.append(File.generated(config, path, content=content))
    return files
