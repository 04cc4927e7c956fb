"""The writer lease in the catalog: one writer of a pipeline's tables across machines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from k2.config import Settings, StackSettings
from k2.errors import LeaseLostError, WriterBusyError
from k2.lake.catalog import open_catalog
from k2.lake.lease import WriterLease, lease_identifier


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def catalog(tmp_path: Path) -> Any:
    settings = Settings(stack=StackSettings(home=tmp_path), _env_file=None)  # type: ignore[call-arg]
    return open_catalog(settings.lake_access())


def lease(catalog: Any, home: str, clock: Clock, name: str = "k2 job stream") -> WriterLease:
    return WriterLease(catalog, "", name, home, ttl_s=60, clock=clock)


def test_a_writer_from_another_machine_is_refused_while_the_lease_is_held(catalog: Any) -> None:
    """A second writer with another K2_HOME is refused with a line naming the holder."""
    clock = Clock()
    lease(catalog, "/home/a/.k2", clock).acquire()
    with pytest.raises(WriterBusyError, match=r"k2 job stream on .* K2_HOME /home/a/\.k2"):
        lease(catalog, "/home/b/.k2", clock, "k2 job rebuild gold").acquire()


def test_a_holder_that_died_elsewhere_frees_the_lease_when_it_expires(catalog: Any) -> None:
    """Once the dead holder's lease runs out another machine takes it; the old holder, should
    it wake up, finds it lost and stops."""
    clock = Clock()
    first = lease(catalog, "/home/a/.k2", clock)
    first.acquire()
    clock.now += 59
    with pytest.raises(WriterBusyError):
        lease(catalog, "/home/b/.k2", clock).acquire()
    clock.now += 2
    second = lease(catalog, "/home/b/.k2", clock)
    second.acquire()
    with pytest.raises(LeaseLostError, match=r"/home/b/\.k2"):
        first.renew()
    second.renew()


def test_a_writer_restarted_in_the_same_place_takes_over_at_once(catalog: Any) -> None:
    """The same machine and K2_HOME (whose file lock proves the old holder gone) does not wait
    for the expiry."""
    clock = Clock()
    lease(catalog, "/home/a/.k2", clock).acquire()
    restarted = lease(catalog, "/home/a/.k2", clock)
    restarted.acquire()
    restarted.renew()


def test_renewing_keeps_a_writer_from_elsewhere_out_and_release_lets_it_in(catalog: Any) -> None:
    """A renewed lease outlives its first term; a released one is free at once."""
    clock = Clock()
    held = lease(catalog, "/home/a/.k2", clock)
    held.acquire()
    for _ in range(5):
        clock.now += 40
        held.renew()
    with pytest.raises(WriterBusyError):
        lease(catalog, "/home/b/.k2", clock).acquire()
    held.release()
    lease(catalog, "/home/b/.k2", clock).acquire()


def test_of_two_writers_racing_for_a_free_lease_exactly_one_wins(catalog: Any) -> None:
    """Both read the lease free; the catalog takes the first commit and refuses the second,
    which then finds the lease held."""
    clock = Clock()
    first, second = lease(catalog, "/home/a/.k2", clock), lease(catalog, "/home/b/.k2", clock)
    stale = first._table()  # both read the free lease ...
    second.acquire()  # ... one commits first ...
    assert not first._write(stale)  # ... the other's commit on the stale read is refused
    with pytest.raises(WriterBusyError, match=r"/home/b/\.k2"):
        first.acquire()


def test_the_lease_table_keeps_one_snapshot(catalog: Any) -> None:
    """Renewals expire the snapshots before them, so the table stays a few files."""
    clock = Clock()
    held = lease(catalog, "/home/a/.k2", clock)
    held.acquire()
    for _ in range(4):
        held.renew()
    table = catalog.load_table(lease_identifier(""))
    assert len(table.metadata.snapshots) == 1
