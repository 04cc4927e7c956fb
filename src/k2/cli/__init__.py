"""The ``k2`` command: the only place that reads settings, configures logging and starts things.

One module per command group; :mod:`k2.cli.context` holds what they share (the error handling,
the settings built once, clean stops on signals) and :mod:`k2.cli.output` the formatting. Every
failure K2 expects (a ``K2Error``) is printed as one line, ``error: <cause>; <fix>``, with exit
code 1. Heavy imports (Spark, Kafka clients, DuckDB) happen inside the commands that need them,
so ``k2 --help`` stays instant.
"""

from k2.cli.root import main

__all__ = ["main"]
