"""K2: real-time crypto market data into an Apache Iceberg lakehouse."""

import importlib
import warnings


def _quiet_authlib() -> None:
    """The schema registry client imports authlib, which warns on import about its own httpx
    module (and forces its warnings to "always"); that says nothing to a K2 user and would start
    every log. Its filter is installed first so this one, added after, takes precedence. Done here
    so that every entry point (the CLI, the jobs under spark-submit, the tests) is covered."""
    try:
        importlib.import_module("authlib.deprecate")
    except ImportError:
        return
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")


_quiet_authlib()
