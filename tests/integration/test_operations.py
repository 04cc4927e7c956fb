"""Operating a running pipeline as a person would: ``k2 run`` in a terminal, ``k2 status``,
``k2 doctor`` breaking each stage in turn, and a real Prometheus scraping it all.

One pipeline serves every test (two cores): ``k2 run --source simulator`` in a pseudo-terminal,
on the session's broker and registry, with a catalog, topics and metrics ports of its own, and a
local Prometheus that the run starts (``K2_PROMETHEUS__LOCAL=on``) with rules generated from this
test's thresholds. The run executes a copy of the code committed in a repository of its own, so
its services report another git sha than the installed code: ``k2 status`` and ``k2 doctor`` run
from that copy see a healthy pipeline, and run from the installed code see stale services.
Tests run in file order; the destructive ones come last.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from k2.config import Settings
from k2.observability.metrics import BookCounters
from k2.run.record import read_run
from k2.stack.manager import Stack, stack_environment
from k2.stack.ports import free_port
from k2.stack.scrape import scrape
from tests.monitoring import (
    alert_rules,
    dashboards,
    metric_names,
    panel_queries,
)
from tests.polling import log_tail, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@dataclass
class Pipeline:
    """The running ``k2 run`` and how to reach what it runs."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    other_build: Path
    screen: list[bytes]
    prometheus: str
    simulator: str
    home: Path
    last_doctor: dict[str, Any] | None = None

    def output(self) -> str:
        return _ANSI.sub("", b"".join(self.screen).decode("utf-8", errors="replace"))

    def k2(self, *args: str, installed: bool = False, timeout: float = 240) -> Any:
        """Run a k2 command: from the run's own build, or from the installed code."""
        env = dict(self.env)
        if installed:
            env.pop("PYTHONPATH", None)
        return subprocess.run(
            [sys.executable, "-m", "k2", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def doctor(self, installed: bool = False) -> dict[str, Any]:
        done = self.k2("doctor", "--json", "--trade-timeout", "10", installed=installed)
        try:
            report: dict[str, Any] = json.loads(done.stdout)
        except ValueError:
            raise AssertionError(f"doctor printed no JSON: {done.stderr[-3000:]}") from None
        assert done.returncode == (0 if report["healthy"] else 1), done.stderr
        self.last_doctor = report
        return report

    def healthy(self) -> bool:
        """Doctor finds every stage healthy; fails at once when the run has stopped."""
        assert self.process.poll() is None, f"k2 run exited {self.process.returncode}"
        return bool(self.doctor()["healthy"])

    def describe(self) -> str:
        """The run as it is now: doctor's last verdict, the screen and every part's log tail."""
        report = self.last_doctor or {}
        broken = next((c for c in report.get("checks", []) if c["state"] == "failed"), None)
        parts = [
            f"k2 run: {'running' if self.process.poll() is None else 'exited'}; doctor: "
            f"{json.dumps(broken) if broken else 'no failed check'}",
            "--- screen:\n" + self.output()[-2000:],
        ]
        parts += [log_tail(log, 1500) for log in sorted((self.home / "logs").glob("*.log"))]
        return "\n".join(parts)

    def part_pid(self, name: str) -> int:
        record = read_run(self.home)
        assert record is not None
        return next(part.pid for part in record.parts if part.name == name)


def _other_build(folder: Path) -> Path:
    """A copy of the code being tested, committed in a repository of its own (another sha)."""
    shutil.copytree(REPO / "src", folder / "src", ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(folder), "-c", "user.name=k2", "-c", "user.email=k2@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "another build"], check=True)
    return folder


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _query(prometheus: str, expr: str) -> Any:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        return _get(url)
    except urllib.error.HTTPError as exc:  # a PromQL error answers 400 with its reason
        return json.load(exc)


def _pty_reader(fd: int, screen: list[bytes]) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        screen.append(data)


def _env(settings: Settings, tmp: Path) -> dict[str, str]:
    env = stack_environment(settings.stack)
    env.update(
        {
            "K2_LAKE__CATALOG_URI": f"jdbc:sqlite:{tmp}/lake/k2.db?journal_mode=WAL",
            "K2_LAKE__WAREHOUSE": str(tmp / "lake" / "warehouse"),
            "K2_STREAM__CHECKPOINT_DIR": str(tmp / "checkpoints"),
            "K2_EXCHANGES": '["binance"]',
            "K2_INGEST__BINANCE__SYMBOLS": '["BTCUSDT"]',
            "K2_KAFKA__TOPIC_PREFIX": "test.ops.",
            "K2_INGEST__SIMULATOR_URL": f"http://127.0.0.1:{free_port()}",
            # binance is the second known exchange: its ingest serves on the base port + 1
            "K2_INGEST__METRICS_PORT": str(free_port() - 1),
            "K2_INGEST__SUMMARY_INTERVAL_S": "1",
            "K2_STREAM__METRICS_PORT": str(free_port()),
            "K2_STREAM__TRIGGER_INTERVAL_S": "1",
            "K2_SPARK__DRIVER_MEMORY": "1g",
            "K2_API__PORT": str(free_port()),
            "K2_PROMETHEUS__LOCAL": "on",
            "K2_PROMETHEUS__PORT": str(free_port()),
            "K2_PROMETHEUS__SCRAPE_INTERVAL_S": "1",
            "K2_ALERTS__STALE_SYMBOL_S": "5",
            "K2_ALERTS__STALE_FOR_S": "5",
        }
    )
    return env


@pytest.fixture(scope="module")
def pipeline(
    stack: Stack, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("ops")
    env = _env(settings, tmp)
    other = _other_build(tmp / "other-build")
    env["PYTHONPATH"] = str(other / "src")
    env.update({"TERM": "xterm-256color", "COLUMNS": "150", "LINES": "50"})
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 150, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "k2", "run", "--source", "simulator"],
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    screen: list[bytes] = []
    reader = threading.Thread(target=_pty_reader, args=(master, screen), daemon=True)
    reader.start()
    running = Pipeline(
        process,
        env,
        other,
        screen,
        f"http://127.0.0.1:{env['K2_PROMETHEUS__PORT']}",
        env["K2_INGEST__SIMULATOR_URL"],
        settings.stack.state_dir,
    )
    try:
        # Three JVMs and five Python processes start on two cores; doctor itself waits up to
        # 10 s for a trade.
        wait_until(running.healthy, 300, "a healthy pipeline", context=running.describe)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(240)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        os.close(master)


def test_k2_run_in_a_terminal_shows_a_live_summary(pipeline: Pipeline) -> None:
    """In a terminal, `k2 run` draws its parts, per symbol trades and per layer rows."""
    frame = wait_until(
        lambda: next(
            (f for f in reversed(pipeline.output().split("K2 · source")) if "BTCUSDT" in f), None
        ),
        60,
        "a summary with trades",
        context=pipeline.describe,
    )
    assert "Ctrl-C stops every part cleanly" in frame
    for expected in ("ingest-binance", "stream", "simulator", "trades/s", "bronze"):
        assert expected in frame, frame
    assert '{"' not in pipeline.output(), "JSON log lines reached the terminal"
    assert not re.search(r"\bWARN \w+:", pipeline.output()), "JVM log lines reached the terminal"


def test_status_shows_every_component_and_where_the_data_is(pipeline: Pipeline) -> None:
    """`k2 status` lists each part up with its build, and the symbol, topic and table rows."""
    done = pipeline.k2("status")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for component in ("kafka", "registry", "prometheus", "simulator", "ingest-binance", "stream"):
        line = next(line for line in lines if line.startswith(component + " "))
        assert " up " in line, line
    assert "runs stale code" not in done.stdout
    status = json.loads(pipeline.k2("status", "--json").stdout)
    assert status["running"] and status["source"] == "simulator"
    builds = {c["name"]: c["git_sha"] for c in status["components"] if c["kind"] == "ingest"}
    assert builds == {"ingest-binance": status["installed_sha"]}
    (symbol,) = status["symbols"]
    assert symbol["symbol"] == "BTCUSDT" and symbol["delivered"] > 0
    (topic,) = status["topics"]
    assert topic["topic"] == "test.ops.market.crypto.trades.binance.raw"
    assert topic["lag"] is not None and sum(topic["end_offsets"].values()) > 0
    bronze = next(t for t in status["tables"] if t["table"] == "bronze.binance_trades")
    assert bronze["rows"] > 0 and bronze["freshness_s"] < 60
    assert status["bad"]["dlq"] == 0


def test_status_marks_services_running_another_build(pipeline: Pipeline) -> None:
    """Seen from the installed code, every K2 service of the run runs stale code, in words."""
    status = json.loads(pipeline.k2("status", "--json", installed=True).stdout)
    services = [c for c in status["components"] if c["kind"] in ("ingest", "stream")]
    assert services and all("runs stale code" in (c["stale"] or "") for c in services)
    human = pipeline.k2("status", installed=True).stdout
    assert "runs stale code: git sha" in human


def test_doctor_passes_every_stage_of_a_healthy_pipeline(pipeline: Pipeline) -> None:
    """Every stage passes, in data-flow order; the human checklist ticks each one."""
    report = pipeline.doctor()
    assert report["healthy"] and report["broken_stage"] is None
    assert [c["state"] for c in report["checks"]] == ["ok"] * 13
    print(f"k2 doctor on a healthy pipeline: {report['seconds']} s")
    done = pipeline.k2("doctor", "--trade-timeout", "10")
    assert done.returncode == 0 and done.stdout.count("✓") == 13, done.stdout


def test_doctor_names_the_build_stage_when_services_run_another_build(pipeline: Pipeline) -> None:
    """Run from the installed code, doctor finds every stage fine but the builds."""
    report = pipeline.doctor(installed=True)
    assert report["broken_stage"] == "builds"
    broken = report["checks"][-1]
    assert "runs git sha" in broken["cause"] and broken["fix"].startswith("restart")


def test_prometheus_scrapes_every_k2_target(pipeline: Pipeline) -> None:
    """The run's Prometheus has every K2 target up."""
    targets = _get(f"{pipeline.prometheus}/api/v1/targets")["data"]["activeTargets"]
    jobs = {t["labels"]["job"]: t["health"] for t in targets}
    assert jobs == {"k2-ingest": "up", "k2-stream": "up"}


def _exported(pipeline: Pipeline) -> set[str]:
    """Metric families the running services define (with or without samples), and ``up``."""
    record = read_run(pipeline.home)
    assert record is not None
    families = {"up"}
    for part in record.parts:
        if part.metrics_url:
            found = scrape(part.metrics_url)
            assert found is not None, part.name
            families |= found.families
    return families


def _family(name: str) -> str:
    return re.sub(r"_(total|bucket|sum|count|info)$", "", name)


def test_every_dashboard_query_parses_and_returns_series(pipeline: Pipeline) -> None:
    """Each panel query of each dashboard is valid PromQL with data on this pipeline."""
    exported = _exported(pipeline)
    wait_until(
        lambda: _query(pipeline.prometheus, "rate(k2_ingest_trades_delivered_total[1m])")["data"][
            "result"
        ],
        60,
        "a rate over the scrapes",
    )
    for board in dashboards().values():
        for title, expr in panel_queries(board):
            answer = _query(pipeline.prometheus, expr.replace("$exchange", "binance"))
            assert answer["status"] == "success", (title, expr, answer)
            missing = {_family(n) for n in metric_names(expr)} - {_family(n) for n in exported}
            assert not missing, (title, missing)
            if not missing:
                assert answer["data"]["result"], (title, expr)


# Exported only by an ingest that captures its exchange's book (not this pipeline's).
BOOK_FAMILIES = {family.name for family in BookCounters("probe", dict).collect()}


def test_every_alert_rule_evaluates_and_stays_quiet_when_healthy(pipeline: Pipeline) -> None:
    """Prometheus loaded every rule, evaluates each without error, and none fires."""
    exported = _exported(pipeline)
    groups = _get(f"{pipeline.prometheus}/api/v1/rules")["data"]["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(loaded) == {rule["alert"] for rule in alert_rules()}
    for name, rule in loaded.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))
        assert rule["state"] == "inactive", name
        missing = {_family(n) for n in metric_names(rule["query"])} - {_family(n) for n in exported}
        assert not missing - BOOK_FAMILIES, (name, missing)  # book metrics: books are off here


def test_a_stalled_symbol_raises_the_stale_alert_and_doctor_names_the_exchange(
    pipeline: Pipeline,
) -> None:
    """With the simulator stalled, K2SymbolStale goes pending in its window and doctor stops at
    the exchange stage."""
    body = json.dumps({"protocol": "binance", "stall": "heartbeats"}).encode()
    request = urllib.request.Request(
        f"{pipeline.simulator}/_sim/faults", body, {"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).close()
    try:

        def stale() -> bool:
            alerts = _get(f"{pipeline.prometheus}/api/v1/alerts")["data"]["alerts"]
            return any(
                a["labels"]["alertname"] == "K2SymbolStale"
                and a["labels"]["symbol"] == "BTCUSDT"
                and a["state"] in ("pending", "firing")
                for a in alerts
            )

        # The age passes 5 s, the ingest reports it within 1 s, Prometheus scrapes and
        # evaluates every second.
        wait_until(stale, 30, "K2SymbolStale pending", every_s=1)
        report = pipeline.doctor()
        assert report["broken_stage"] == "venue", report
        check = next(c for c in report["checks"] if c["stage"] == "venue")
        assert "no trade within 10 s" in check["cause"]
        stages = [c["stage"] for c in report["checks"]]
        after = report["checks"][stages.index("venue") + 1 :]
        assert [c["state"] for c in after] == ["not reached"] * 5
    finally:
        deleting = urllib.request.Request(f"{pipeline.simulator}/_sim/faults", method="DELETE")
        urllib.request.urlopen(deleting, timeout=10).close()
    wait_until(pipeline.healthy, 120, "a healthy pipeline again", context=pipeline.describe)


@pytest.mark.parametrize(("part", "stage"), [("stream", "stream"), ("ingest-binance", "ingest")])
def test_doctor_names_the_stage_of_a_stopped_part(
    pipeline: Pipeline, part: str, stage: str
) -> None:
    """A part stopped with SIGSTOP (alive, but doing nothing) is the stage doctor names."""
    group = pipeline.part_pid(part)  # each part leads a process group (its JVM too)
    os.killpg(group, signal.SIGSTOP)
    try:
        report = pipeline.doctor()
        assert report["broken_stage"] == stage, report
    finally:
        os.killpg(group, signal.SIGCONT)
    wait_until(pipeline.healthy, 120, "a healthy pipeline again", context=pipeline.describe)


def test_doctor_names_the_broker_when_it_is_stopped(pipeline: Pipeline, stack: Stack) -> None:
    """With the broker stopped, doctor stops at the broker stage, in a few seconds."""
    broker = stack.services[0]
    assert broker.stop()
    try:
        report = pipeline.doctor()
        assert report["broken_stage"] == "broker", report
        assert report["seconds"] < 30
    finally:
        assert broker.start()
