"""A start that fails part-way leaves nothing running, and ``stack down`` finds every process of
its state folder, also one whose pid file is gone."""

from __future__ import annotations

import socket
from pathlib import Path

import psutil
import pytest

from k2.errors import PortInUseError, StackError
from k2.stack.kafka import KafkaBroker
from k2.stack.manager import Stack
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


def _processes_of(state_dir: Path) -> list[int]:
    """Pids of processes started for ``state_dir``."""
    mark = f"-Dk2.home={state_dir}"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if mark in (proc.info["cmdline"] or ()):
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def test_a_registry_that_cannot_start_stops_the_broker_started_for_it(tmp_path: Path) -> None:
    """When the registry's port is taken, `stack up` fails and the broker it started is gone."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        settings = make_settings(tmp_path / "home", registry_port=holder.getsockname()[1])
        with pytest.raises(PortInUseError, match="schema registry"):
            Stack(settings).up()
    assert _processes_of(settings.stack.state_dir) == []
    assert not (settings.stack.state_dir / "kafka" / "kafka.pid").exists()


def test_a_service_not_healthy_in_time_is_stopped_before_the_error(tmp_path: Path) -> None:
    """A broker that is not healthy within the start timeout is stopped, not left behind."""
    settings = make_settings(tmp_path / "home")
    settings = settings.model_copy(
        update={"stack": settings.stack.model_copy(update={"start_timeout_s": 0.5})}
    )
    with pytest.raises(StackError, match="did not become healthy"):
        Stack(settings).up()
    assert _processes_of(settings.stack.state_dir) == []


def test_stack_down_stops_a_service_whose_pid_file_was_lost(tmp_path: Path) -> None:
    """`stack down` stops a broker of its state folder that no pid file records any more."""
    settings = make_settings(tmp_path / "home")
    broker = KafkaBroker(settings.stack)
    assert broker.start()
    try:
        broker.process.pid_file.unlink()
        assert broker.process.info() is None
        assert len(_processes_of(settings.stack.state_dir)) == 1
        assert ("kafka", True) in Stack(settings).down()
        assert _processes_of(settings.stack.state_dir) == []
    finally:
        for pid in _processes_of(settings.stack.state_dir):
            psutil.Process(pid).kill()
