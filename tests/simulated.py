"""Simulator settings for tests: an exchange a test does not name lists nothing.

The simulator shares its trade rate among every symbol it lists, on every exchange of the
registry, and an exchange's symbols default to its whole universe; so a test that names the
symbols of some exchanges starts from :func:`unlisted`, and a new exchange in the registry
neither slows its trades nor adds hundreds of symbols to it.
"""

from __future__ import annotations

from k2.exchanges import VENUES


def unlisted() -> dict[str, tuple[str, ...]]:
    """``<exchange>_symbols`` of every exchange in the registry, each listing nothing."""
    return {f"{name}_symbols": () for name in VENUES}
