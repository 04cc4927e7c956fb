"""``make bench``: run every benchmark module (or those named), print figures, write a JSON report.

Benchmarks measure; they never assert. The report goes to ``bench/results/<UTC time>.json`` with
the machine's core count and memory, so figures from different machines are not confused.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent / "results"


def _modules(selected: list[str]) -> list[str]:
    names = sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).resolve().parent)])
        if info.name.startswith("bench_")
    )
    if selected:
        unknown = [name for name in selected if f"bench_{name}" not in names and name not in names]
        if unknown:
            sys.exit(f"error: unknown benchmark(s) {unknown}; available: {names}")
        names = [n for n in names if n in selected or n.removeprefix("bench_") in selected]
    return names


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        },
        "results": {},
    }
    for name in _modules(args.names):
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        result = importlib.import_module(f"bench.{name}").run()
        result["wall_s"] = round(time.perf_counter() - started, 2)
        report["results"][name] = result
        print(json.dumps(result, indent=2), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"report written to {out}")


if __name__ == "__main__":
    main()
