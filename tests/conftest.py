"""Session fixtures: one real Kafka broker, one real registry and one Spark session per test run,
and, for the tests that ask for it, one local cluster.

Every service runs from a temporary state folder on free ports, so the suite never touches a
stack the user is running. Each JVM starts once per session (two cores).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from k2.config import PrometheusSettings, Settings, StackSettings
from k2.stack.ports import free_port

# Tests build their own settings; the developer's K2_* environment must not leak in.
for _key in [key for key in os.environ if key.startswith("K2_")]:
    del os.environ[_key]

# Property tests check what the code does, never how fast: on a machine busy with other work an
# example may take seconds, which is no failure (speed is measured by `make bench`).
settings.register_profile("k2", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("k2")


def make_settings(home: Path, **stack: Any) -> Settings:
    """Settings for a private stack in ``home`` on free ports."""
    ports = {
        "kafka_port": free_port(),
        "kafka_controller_port": free_port(),
        "registry_port": free_port(),
        "registry_management_port": free_port(),
    }
    return Settings(
        stack=StackSettings(home=home, start_timeout_s=180, **{**ports, **stack}),
        # Tests that want a Prometheus start their own on a free port.
        prometheus=PrometheusSettings(local="off"),
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("k2home"))


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Any]:
    from k2.stack.manager import Stack  # noqa: PLC0415 - kept out of unit tests
    from k2.transport.topics import TopicAdmin, k2_topics  # noqa: PLC0415 - kept out of unit tests

    running = Stack(settings)
    running.up()
    TopicAdmin(settings.kafka_config()).ensure(k2_topics(settings.kafka, settings.exchanges))
    yield running
    running.down()


@pytest.fixture(scope="session")
def spark(settings: Settings) -> Iterator[Any]:
    from k2.jobs.session import build_session  # noqa: PLC0415 - kept out of unit tests

    session = build_session(settings.spark_setup(), "k2-tests")
    yield session
    session.stop()


class _ClusterHolder:
    """The local cluster while tests that use it run (they are grouped: see below)."""

    running: Any = None
    home: Path | None = None

    @classmethod
    def stop(cls) -> None:
        if cls.running is not None:
            cls.running.down()
            cls.running = None
        if cls.home is not None:
            shutil.rmtree(cls.home, ignore_errors=True)
            cls.home = None


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """The local cluster (three brokers, registry, PostgreSQL, S3, REST catalog, Spark master and
    two workers), started once for the tests that use it and stopped after the last of them.

    Its folder is made by ``mkdtemp`` (0700) and opened to 0711: PostgreSQL runs as the
    ``postgres`` account when the tests run as root, and must be able to enter it.
    """
    from k2.stack.cluster import LocalCluster  # noqa: PLC0415 - kept out of unit tests

    if _ClusterHolder.running is None:
        home = Path(tempfile.mkdtemp(prefix="k2-cluster-"))
        home.chmod(0o711)
        _ClusterHolder.home = home
        _ClusterHolder.running = LocalCluster(StackSettings(home=home, start_timeout_s=180))
        _ClusterHolder.running.up()
    try:
        yield _ClusterHolder.running
    finally:
        _ClusterHolder.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that use the cluster run one after the other, so its ten servers (2 GB) run
    only while they do."""
    items.sort(key=lambda item: "cluster" not in getattr(item, "fixturenames", ()))


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the cluster once the last test that uses it has run."""
    uses = "cluster" in getattr(item, "fixturenames", ())
    if uses and (nextitem is None or "cluster" not in getattr(nextitem, "fixturenames", ())):
        _ClusterHolder.stop()
