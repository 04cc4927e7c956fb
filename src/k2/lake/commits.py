"""Which Iceberg commit failures are a lost race, worth retrying from a fresh table state.

Every writer of a table (the streaming jobs, ``k2 lake maintain``, pyiceberg) commits by swapping
the table's metadata pointer in the shared catalog, optimistically. A writer that loses the race
gets Iceberg's ``CommitFailedException`` (or ``ValidationException`` when a rewrite finds its
files changed), and on the SQLite catalog also ``SQLITE_BUSY``/``SQLITE_BUSY_SNAPSHOT``, which
Iceberg reports as an unknown SQL failure although the pointer was not moved. Those are retried by
the caller; anything else is a real error.
"""

from __future__ import annotations

import re

_CONFLICT = re.compile(
    r"CommitFailedException|ValidationException|Cannot commit|SQLITE_BUSY|database is locked"
)


def is_commit_conflict(exc: BaseException) -> bool:
    """True when ``exc`` (as Spark or pyiceberg raised it) says a commit lost a race."""
    return bool(_CONFLICT.search(str(exc)))
