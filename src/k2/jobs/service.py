"""Spark settings for K2's long-running commands (``k2 job bronze``, ``k2 lake maintain``).

Spark draws stage progress bars on the console by default; in a service they interleave with the
structured log lines and with K2's own progress bar. Logs and metrics report progress instead.
A user's explicit ``spark.conf`` entry still wins.
"""

from __future__ import annotations

from k2.config import SparkSetup, revised


def service_setup(setup: SparkSetup) -> SparkSetup:
    """``setup`` with Spark's console progress bars off unless configured otherwise."""
    conf = {"spark.ui.showConsoleProgress": "false", **setup.spark.conf}
    return revised(setup, spark=revised(setup.spark, conf=conf))
