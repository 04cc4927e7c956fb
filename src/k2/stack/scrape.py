"""Reading a running K2 process's ``/metrics``, as Prometheus would, for the console and status.

One scrape is a snapshot: the metric families the process defines (also those with no sample
yet, such as a labelled counter before its first event) and every sample with its labels.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    """What one ``/metrics`` answered."""

    families: frozenset[str]
    samples: tuple[Sample, ...] = ()
    at: float = 0.0  # time.monotonic() of the answer, for rates between two scrapes

    def series(self, name: str, **labels: str) -> list[Sample]:
        """Samples called ``name`` whose labels include ``labels``."""
        return [
            sample
            for sample in self.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        ]

    def total(self, name: str, **labels: str) -> float | None:
        """The sum of the matching samples, or None when there is none."""
        found = self.series(name, **labels)
        return sum(sample.value for sample in found) if found else None

    def by(self, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        """The matching samples summed by the values of ``keys``."""
        out: dict[tuple[str, ...], float] = {}
        for sample in self.series(name):
            key = tuple(sample.labels.get(k, "") for k in keys)
            out[key] = out.get(key, 0.0) + sample.value
        return out

    def build(self) -> Mapping[str, str]:
        """The labels of ``k2_build_info`` (version, git_sha, component), empty if absent."""
        found = self.series("k2_build_info")
        return found[0].labels if found else {}

    def defines(self, names: Iterable[str]) -> bool:
        return any(name in self.families for name in names)


@dataclass
class Rate:
    """Per-second rates of counters between successive scrapes of one process."""

    previous: Scrape | None = None
    rates: dict[tuple[str, ...], float] = field(default_factory=dict)

    def update(self, scrape: Scrape, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        """Rates of ``name`` by ``keys`` since the previous scrape (empty the first time)."""
        before, self.previous = self.previous, scrape
        if before is None or scrape.at <= before.at:
            return self.rates
        elapsed = scrape.at - before.at
        old = before.by(name, *keys)
        self.rates = {
            key: max(0.0, value - old.get(key, 0.0)) / elapsed
            for key, value in scrape.by(name, *keys).items()
        }
        return self.rates


def parse_metrics(text: str, at: float = 0.0) -> Scrape:
    """A :class:`Scrape` of Prometheus text exposition ``text``."""
    families: set[str] = set()
    samples: list[Sample] = []
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for sample in family.samples:
            samples.append(Sample(sample.name, dict(sample.labels), float(sample.value)))
    return Scrape(frozenset(families), tuple(samples), at)


def scrape(url: str, timeout_s: float = 2.0) -> Scrape | None:
    """The metrics at ``url``, or None when nothing answers there."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - K2's URL
            text = response.read().decode("utf-8", errors="replace")
    except (OSError, urllib.error.URLError, ValueError):
        return None
    try:
        return parse_metrics(text, time.monotonic())
    except ValueError:
        return None
