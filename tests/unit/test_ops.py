"""The pure parts of operating K2: reading metrics, the run record, the doctor's stage order, the
status screen and the console of `k2 run`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from k2.cli.output import doctor_line, not_running_line, status_renderable
from k2.config import Settings
from k2.exchanges import VENUES
from k2.ops.components import Component, stale_reason
from k2.ops.doctor import Broken, Stage, run_stages
from k2.ops.status import Status
from k2.stack.console import LogCopier, notice_of
from k2.stack.pipeline import STOP_ORDER, plan_parts
from k2.stack.runfile import PartRecord, RunRecord, read_run, start_time, write_run
from k2.stack.scrape import Rate, parse_metrics

METRICS = """\
# HELP k2_build_info Version and git sha of the running K2 code.
# TYPE k2_build_info gauge
k2_build_info{component="ingest-binance",git_sha="abc",version="0.1.0"} 1.0
# HELP k2_ingest_trades_delivered_total Trades acknowledged by Kafka.
# TYPE k2_ingest_trades_delivered_total counter
k2_ingest_trades_delivered_total{exchange="binance",symbol="BTCUSDT"} 10.0
k2_ingest_trades_delivered_total{exchange="binance",symbol="ETHUSDT"} 5.0
# HELP k2_ingest_gaps_total Gap events (missing trade ranges).
# TYPE k2_ingest_gaps_total counter
"""


def _settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, stack={"home": tmp_path})  # type: ignore[call-arg]


def test_a_scrape_knows_families_without_samples_and_sums_by_label() -> None:
    """A labelled counter before its first event is a known family; samples sum by label."""
    scrape = parse_metrics(METRICS, at=1.0)
    assert "k2_ingest_gaps" in scrape.families and not scrape.series("k2_ingest_gaps_total")
    assert scrape.total("k2_ingest_trades_delivered_total") == 15
    assert scrape.by("k2_ingest_trades_delivered_total", "symbol") == {
        ("BTCUSDT",): 10,
        ("ETHUSDT",): 5,
    }
    assert scrape.build()["git_sha"] == "abc"


def test_rates_come_from_two_scrapes() -> None:
    """Delivered per second is the counter's rise over the time between two scrapes."""
    rate = Rate()
    assert rate.update(parse_metrics(METRICS, at=1.0), "k2_ingest_trades_delivered_total") == {}
    later = METRICS.replace("} 10.0", "} 30.0")
    rates = rate.update(parse_metrics(later, at=3.0), "k2_ingest_trades_delivered_total", "symbol")
    assert rates == {("BTCUSDT",): 10.0, ("ETHUSDT",): 0.0}


def test_the_run_record_survives_a_round_trip_and_knows_dead_pids(tmp_path: Path) -> None:
    """A recorded part is alive only while its pid still has the recorded start time."""
    me = os.getpid()
    part = PartRecord("ingest-binance", "ingest", me, start_time(me), "/x.log", "http://a/metrics")
    gone = PartRecord("stream", "stream", me, start_time(me) - 100, "/y.log")
    write_run(tmp_path, RunRecord(me, start_time(me), "simulator", "abc", "/logs", (part, gone)))
    record = read_run(tmp_path)
    assert record is not None and record.parts == (part, gone)
    assert record.alive() and part.alive() and not gone.alive()


def test_a_service_on_another_sha_is_stale_in_words() -> None:
    """Another git sha is stale code; an unknown one (no git checkout) is not judged."""
    assert "runs stale code: git sha abc, installed def" in (
        stale_reason({"git_sha": "abc"}, "def") or ""
    )
    assert stale_reason({"git_sha": "abc"}, "abc") is None
    assert stale_reason({"git_sha": "unknown"}, "abc") is None


def test_doctor_stops_at_the_first_broken_stage() -> None:
    """Stages after the first broken one are not reached (and not run)."""
    ran = []

    def ok(name: str) -> Stage:
        return Stage(name, name, lambda: ran.append(name) or "fine")

    def broken() -> str:
        raise Broken("the broker does not answer", "start it")

    report = run_stages([ok("a"), Stage("b", "b", broken), ok("c")])
    assert [c.state for c in report.checks] == ["ok", "failed", "not reached"]
    assert ran == ["a"] and report.broken is not None and report.broken.stage == "b"
    assert report.as_json()["broken_stage"] == "b"
    assert doctor_line(report.checks[1]) == [
        "✗ b",
        "    cause: the broker does not answer",
        "    fix:   start it",
    ]
    assert (
        doctor_line(report.checks[2])[0].startswith("– c")
        and "not reached" in (doctor_line(report.checks[2])[0])
    )


def test_the_status_screen_marks_stale_services() -> None:
    """The rendered status names each component, its state and a stale build in words."""
    components = [
        Component("kafka", "service", True, "127.0.0.1:9092", 10, 5.0, "4.1.1"),
        Component(
            "ingest-binance",
            "ingest",
            True,
            "127.0.0.1:9401",
            11,
            5.0,
            "0.1.0",
            "abc",
            stale="runs stale code: git sha abc, installed def; restart it",
        ),
        Component("stream", "stream", False, "127.0.0.1:9402"),
    ]
    status = Status("/home/k2", True, "0.1.0", "def", components, "simulator")
    console = Console(record=True, width=160)
    console.print(status_renderable(status))
    text = console.export_text()
    assert "K2 0.1.0 (def)" in text and "source simulator" in text
    lines = text.splitlines()
    assert "up" in next(line for line in lines if line.startswith("kafka"))
    assert "down" in next(line for line in lines if line.startswith("stream"))
    assert "runs stale code: git sha abc" in text


def test_status_with_nothing_running_is_one_line(tmp_path: Path) -> None:
    """`k2 status` in an empty K2_HOME prints one line that says how to start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("K2_")}
    env.update({"K2_HOME": str(tmp_path), "K2_PROMETHEUS__LOCAL": "off"})
    env.update({"K2_INGEST__SIMULATOR_URL": "http://127.0.0.1:9", "K2_INGEST__METRICS_PORT": "9"})
    env["K2_STREAM__METRICS_PORT"] = "8"  # below the ingests', which take 9 onwards
    done = subprocess.run(
        [sys.executable, "-m", "k2", "status"], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [not_running_line(str(tmp_path.resolve()))]
    assert "make run" in done.stdout


def test_parts_start_in_data_flow_order_on_known_ports(tmp_path: Path) -> None:
    """The simulator starts first and the API last, every part has a metrics port even when the
    setting is 0, and the stream's JVM logs to a file of its own."""
    settings = _settings(tmp_path).model_copy(
        update={"ingest": _settings(tmp_path).ingest.model_copy(update={"metrics_port": 0})}
    )
    parts = plan_parts(settings, "simulator", tmp_path, jvm_logs=False)
    names = [p.name for p in parts]
    ingests = [f"ingest-{name}" for name in VENUES]
    assert names == ["simulator", *ingests, "stream", "api"]
    assert all(p.metrics_port for p in parts if p.stage != "simulator")
    assert "--metrics-port" in parts[1].args
    stream = next(p for p in parts if p.name == "stream")
    conf = json.loads(stream.env["K2_SPARK__CONF"])
    assert "log4j2.configurationFile" in conf["spark.driver.extraJavaOptions"]
    assert "stream-jvm.log" in (tmp_path / "log4j2-stream.properties").read_text()
    live = {p.name: p for p in plan_parts(settings, "live", tmp_path, True)}
    assert "K2_SPARK__CONF" not in live["stream"].env
    assert STOP_ORDER == ("api", "ingest", "stream", "simulator")


def test_the_console_copies_new_log_lines_and_picks_out_warnings(tmp_path: Path) -> None:
    """Off a terminal each part's new lines are copied; warnings become one-line notices."""

    class Part:
        name = "ingest-binance"
        log = tmp_path / "ingest-binance.log"
        metrics_url = None
        pid = 1

        def exit_code(self) -> int | None:
            return None

    Part.log.write_text('{"event": "old"}\n')
    out = io.StringIO()
    copier = LogCopier(out)
    copier.watch([Part()])
    with Part.log.open("a") as log:
        log.write('{"event": "ws_connected", "level": "info"}\n{"event": "half')
    copier.watch([Part()])
    assert out.getvalue() == '{"event": "ws_connected", "level": "info"}\n'
    warning = json.dumps(
        {
            "event": "ingest_gap_unfilled",
            "level": "warning",
            "timestamp": "2026-01-01T10:00:00Z",
            "symbol": "BTCUSDT",
        }
    )
    assert notice_of("ingest-binance", warning) == (
        "10:00:00 ingest-binance WARNING ingest_gap_unfilled symbol=BTCUSDT"
    )
    assert notice_of("ingest-binance", '{"event": "x", "level": "info"}') is None
