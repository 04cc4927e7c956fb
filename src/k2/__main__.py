"""``python -m k2`` runs the ``k2`` command."""

from k2.cli import main

main()
