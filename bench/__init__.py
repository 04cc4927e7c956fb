"""K2 benchmarks: each ``bench_*.py`` module has ``run() -> dict`` and prints its figures."""
