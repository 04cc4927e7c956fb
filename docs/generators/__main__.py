"""``python -m generators FILE``: write every generated page to FILE as one JSON object, its
path in the site → its content.

The MkDocs hook runs this in a fresh interpreter on every build, so ``mkdocs serve`` shows the
code as it is now, not as it was when the server started. The pages go to a file, not to
stdout, where a library's log line would corrupt them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from generators import pages

if __name__ == "__main__":
    generated = pages(Path(__file__).resolve().parents[2])
    Path(sys.argv[1]).write_text(json.dumps(generated))
