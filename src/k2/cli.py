"""The ``k2`` command: the only place that reads settings, configures logging and starts things.

Every failure K2 expects (a ``K2Error``) is printed as one line, ``error: <cause>; <fix>``, with
exit code 1. Unexpected exceptions keep their traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import structlog

from k2.config import KNOWN_EXCHANGES, Settings, load_settings, masked_dump
from k2.errors import K2Error
from k2.observability.logging import configure_logging
from k2.version import git_sha, k2_version

F = TypeVar("F", bound=Callable[..., Any])


class K2Group(click.Group):
    """A click group that turns K2 errors into one line on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except K2Error as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


def settings_of(ctx: click.Context) -> Settings:
    """The settings built once by the root command."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = load_settings()
        configure_logging(root.obj.log_level, root.obj.log_format)
    settings: Settings = root.obj
    return settings


@click.group(cls=K2Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(k2_version(), message=f"k2 %(version)s ({git_sha()})")
def main() -> None:
    """K2: every public trade from crypto exchanges, in an Iceberg lakehouse you query with SQL.

    Settings come from K2_* environment variables and an optional .env file
    (`k2 config show` lists them). Start with `k2 run`: the whole pipeline (add
    --source simulator without internet access).
    """


# ---------------------------------------------------------------------------------------------
# config


@main.group(cls=K2Group)
def config() -> None:
    """Inspect K2's settings."""


@config.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the effective settings as JSON, secrets masked."""
    click.echo(json.dumps(masked_dump(settings_of(ctx)), indent=2, sort_keys=True))


# ---------------------------------------------------------------------------------------------
# stack


@main.group(cls=K2Group)
def stack() -> None:
    """Run the embedded default stack: a local Kafka broker and schema registry.

    State (data, logs, pid files) lives in K2_HOME (default ./.k2). Services bind to 127.0.0.1.
    """


@stack.command("up")
@click.pass_context
def stack_up(ctx: click.Context) -> None:
    """Start the broker and the registry (a no-op for what already runs), create K2's topics."""
    from k2.stack.manager import Stack  # noqa: PLC0415 - keep `k2 --help` fast
    from k2.transport.topics import TopicAdmin, k2_topics  # noqa: PLC0415

    settings = settings_of(ctx)
    log = structlog.get_logger("k2.stack")
    log.info(
        "stack_starting",
        version=k2_version(),
        git_sha=git_sha(),
        home=str(settings.stack.state_dir),
    )
    for name, started in Stack(settings).up():
        click.echo(f"{name}: {'started' if started else 'already running'}")
    for spec, outcome in TopicAdmin(settings).ensure(k2_topics(settings)):
        if outcome == "created":
            click.echo(f"topic {spec.name}: created ({spec.partitions} partitions)")
    _print_status(settings)


@stack.command("down")
@click.pass_context
def stack_down(ctx: click.Context) -> None:
    """Stop the services (SIGTERM, bounded wait, then SIGKILL). Data stays in K2_HOME."""
    from k2.stack.manager import Stack  # noqa: PLC0415

    for name, stopped in Stack(settings_of(ctx)).down():
        click.echo(f"{name}: {'stopped' if stopped else 'not running'}")


@stack.command("status")
@click.pass_context
def stack_status(ctx: click.Context) -> None:
    """Show each service: up or down, address, pid, version, uptime and log file."""
    _print_status(settings_of(ctx))


def _print_status(settings: Settings) -> None:
    from k2.stack.manager import Stack  # noqa: PLC0415

    row_format = "{:<10} {:<9} {:<44} {:>7} {:<9} {:>8}  {}"
    click.echo(
        row_format.format("component", "state", "address", "pid", "version", "uptime", "log")
    )
    for row in Stack(settings).status():
        state = ("up" if row.healthy else "starting") if row.up else "down"
        uptime = f"{row.uptime_s:.0f}s" if row.uptime_s is not None else "-"
        pid = str(row.pid) if row.pid else "-"
        click.echo(
            row_format.format(row.name, state, row.address, pid, row.version, uptime, row.log)
        )


# ---------------------------------------------------------------------------------------------
# topics


@main.group(cls=K2Group)
def topics() -> None:
    """List, create and describe K2's Kafka topics."""


@topics.command("list")
@click.pass_context
def topics_list(ctx: click.Context) -> None:
    """List the topics on the cluster (internal topics hidden)."""
    from k2.transport.topics import TopicAdmin  # noqa: PLC0415

    for name in TopicAdmin(settings_of(ctx)).names():
        click.echo(name)


@topics.command("create")
@click.pass_context
def topics_create(ctx: click.Context) -> None:
    """Create the raw, DLQ and gap topics of every configured exchange (idempotent)."""
    from k2.transport.topics import TopicAdmin, k2_topics  # noqa: PLC0415

    settings = settings_of(ctx)
    for spec, outcome in TopicAdmin(settings).ensure(k2_topics(settings)):
        click.echo(f"{spec.name}: {outcome} ({spec.partitions} partitions)")


@topics.command("describe")
@click.argument("names", nargs=-1)
@click.pass_context
def topics_describe(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Partitions, replication and non-default settings of NAMES (default: K2's topics)."""
    from k2.transport.topics import TopicAdmin, k2_topics  # noqa: PLC0415

    settings = settings_of(ctx)
    wanted = list(names) or [spec.name for spec in k2_topics(settings)]
    for state in TopicAdmin(settings).describe(wanted):
        conf = " ".join(f"{k}={v}" for k, v in sorted(state.config.items()))
        click.echo(
            f"{state.name}: partitions={state.partitions} replication={state.replication} {conf}"
        )


# ---------------------------------------------------------------------------------------------
# lake


@main.group(cls=K2Group)
def lake() -> None:
    """The Iceberg lakehouse (catalog `k2`)."""


@lake.command("init")
@click.pass_context
def lake_init(ctx: click.Context) -> None:
    """Create the namespaces bronze, silver and gold (idempotent)."""
    from k2.lake.catalog import NAMESPACES, ensure_namespaces, open_catalog  # noqa: PLC0415

    created = ensure_namespaces(open_catalog(settings_of(ctx)))
    for namespace in NAMESPACES:
        click.echo(f"k2.{namespace}: {'created' if namespace in created else 'exists'}")


# ---------------------------------------------------------------------------------------------
# simulate


def _comma_list(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


@main.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=8765, show_default=True, help="Port; 0 picks a free one.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the market.")
@click.option(
    "--id-base",
    type=int,
    help="Trade ids start above this; default: the clock in microseconds, so ids keep rising "
    "across restarts as a venue's do.",
)
@click.option(
    "--rate",
    type=int,
    default=100,
    show_default=True,
    help="Synthetic trades per second in total, spread evenly over all symbols.",
)
@click.option(
    "--kraken-symbols",
    callback=_comma_list,
    help="Kraken pairs to list (v1 names, comma-separated); default: XBT/USD,ETH/USD,...",
)
@click.option(
    "--binance-symbols",
    callback=_comma_list,
    help="Binance symbols to list (comma-separated); default: BTCUSDT,ETHUSDT,...",
)
@click.option(
    "--trades-per-symbol", type=int, help="Stop generating a symbol after this many trades."
)
@click.option(
    "--replay",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Replay a recording (cryptofeed format, or K2 JSONL if named *.jsonl) instead of "
    "the synthetic market; repeatable.",
)
@click.option(
    "--replay-speed", type=float, help="Replay pace (2 = twice as fast, 0 = all at once). [1]"
)
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(dir_okay=False),
    help="Append every trade sent to a client to this JSONL file.",
)
@click.option("--retention", type=int, help="Trades kept per symbol for REST. [100000]")
@click.option("--tick", "tick_s", type=float, help="Seconds between market steps. [0.01]")
@click.option("--max-batch", type=int, help="Most Kraken trades in one frame. [100]")
@click.option("--snapshot-size", type=int, help="Trades in Kraken's subscribe snapshot. [50]")
@click.option("--heartbeat", "heartbeat_s", type=float, help="Kraken heartbeat seconds. [1]")
@click.option(
    "--kraken-idle",
    "kraken_idle_s",
    type=float,
    help="Kraken closes connections without a subscription after this many seconds. [60]",
)
@click.option(
    "--binance-ping-interval",
    "binance_ping_s",
    type=float,
    help="Seconds between Binance ping frames. [20]",
)
@click.option(
    "--binance-pong-timeout",
    "binance_pong_timeout_s",
    type=float,
    help="Binance disconnects if a ping has no pong within this many seconds. [60]",
)
@click.option(
    "--binance-control-rate",
    type=int,
    help="Incoming control messages per second before Binance disconnects. [5]",
)
@click.option("--binance-max-streams", type=int, help="Streams per Binance connection. [1024]")
@click.option(
    "--max-connection-age",
    "max_connection_age_s",
    type=float,
    help="Binance closes a connection at this age, in seconds (stand-in for 24 h). [86400]",
)
@click.option(
    "--shutdown-after",
    "shutdown_after_s",
    type=float,
    help="Send Binance serverShutdown this many seconds after each connect.",
)
@click.option(
    "--shutdown-grace",
    "shutdown_grace_s",
    type=float,
    help="Seconds from serverShutdown to disconnection. [1]",
)
@click.option(
    "--binance-weight-limit", type=int, help="Binance REST weight per minute; 0: no limit. [6000]"
)
@click.option(
    "--kraken-rest-limit", type=int, help="Kraken REST calls per 10 s; 0: no limit. [150]"
)
@click.option(
    "--fault-protocol",
    "protocol",
    type=click.Choice(["kraken", "kraken-v1", "kraken-v2", "binance"]),
    help="Connections the fault options below apply to (default: all).",
)
@click.option(
    "--fault-connections",
    "connections",
    type=int,
    help="How many connections get the faults (default: every one).",
)
@click.option("--drop-after-trades", type=int, help="Cut a connection after N trades.")
@click.option(
    "--drop-after-seconds", "drop_after_s", type=float, help="Cut a connection after T seconds."
)
@click.option(
    "--stall",
    type=click.Choice(["heartbeats", "silent"]),
    help="Stop sending trades (heartbeats: keep-alives go on; silent: nothing at all).",
)
@click.option("--stall-after-trades", type=int, help="Stall after N trades. [0]")
@click.option("--stall-for", "stall_for_s", type=float, help="End a stall after T seconds.")
@click.option("--garble-every", type=int, help="Corrupt every N-th trade frame.")
@click.option("--duplicate-every", type=int, help="Send every N-th trade frame twice.")
@click.option(
    "--reject-symbol",
    "reject_symbols",
    multiple=True,
    help="Refuse subscriptions to this symbol (as the protocol spells it); repeatable.",
)
@click.option(
    "--lose-every",
    type=int,
    help="The venues lose every N-th trade id from their streams (REST still has it).",
)
@click.option(
    "--lose-exchange",
    "lose_exchanges",
    multiple=True,
    type=click.Choice(["kraken", "binance"]),
    help="Venues that lose ids (default: both); repeatable.",
)
@click.option(
    "--urls-file",
    type=click.Path(dir_okay=False),
    help="Also write the URLs as JSON to this file once listening.",
)
@click.pass_context
def simulate(ctx: click.Context, /, urls_file: str | None, **options: Any) -> None:
    """Run a local exchange simulator: Kraken v1/v2 and Binance spot, WebSocket and REST.

    Speaks each venue's documented protocol (acks, snapshots, heartbeats, pings, limits) from a
    deterministic synthetic market or a replayed recording, injects faults on demand (also at run
    time: POST /_sim/faults) and writes every trade it sends to --ledger. Prints the URLs to
    point clients at; Ctrl-C stops it.
    """
    from k2.simulator.runner import build_config, run  # noqa: PLC0415

    settings_of(ctx)  # configures logging
    options["reject_symbols"] = tuple(options["reject_symbols"])
    options["lose_exchanges"] = tuple(options["lose_exchanges"]) or None
    run(build_config(options), urls_file, click.echo)


# ---------------------------------------------------------------------------------------------
# jobs and lake maintenance


def _stop_on_signals() -> Any:
    """An event that Ctrl-C or SIGTERM sets, so a long-running command stops cleanly.

    A second Ctrl-C while it stops raises ``KeyboardInterrupt`` as usual.
    """
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    stop = threading.Event()

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, handle)
    return stop


@main.group(cls=K2Group)
def job() -> None:
    """Run K2's Spark jobs (local[*] by default, any master with K2_SPARK__MASTER)."""


@job.command("bronze")
@click.option(
    "--exchange",
    "exchanges",
    multiple=True,
    type=click.Choice(KNOWN_EXCHANGES),
    help="Stream only this exchange; repeatable (default: every configured exchange).",
)
@click.pass_context
def job_bronze(ctx: click.Context, exchanges: tuple[str, ...]) -> None:
    """Stream the raw Kafka topics into k2.bronze.<exchange>_trades, exactly once.

    Runs until Ctrl-C or SIGTERM, then stops its queries cleanly. Restarting resumes where it
    stopped (from its checkpoint, or from the offsets in the tables if the checkpoint is gone).
    Prometheus metrics on K2_BRONZE__METRICS_PORT.
    """
    from k2.jobs.bronze import run_bronze  # noqa: PLC0415

    settings = settings_of(ctx)
    run_bronze(settings, list(exchanges) or None, _stop_on_signals())


@job.command("spark-conf")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the properties (default: K2_HOME/spark/k2-spark.conf).",
)
@click.pass_context
def job_spark_conf(ctx: click.Context, output: Path | None) -> None:
    """Write K2's Spark properties for spark-submit and print the file's path.

    The file holds the jars, the Iceberg catalog k2 and every other setting the jobs use, with
    owner-only permissions (it carries the catalog's credentials). Run a job on a cluster with:

    \b
      PYSPARK_PYTHON=.venv/bin/python spark-submit \\
        --properties-file "$(k2 job spark-conf)" --master MASTER src/k2/__main__.py job bronze

    What spark-submit is given (--master, --conf) wins over K2_SPARK__* settings.
    """
    from k2.jobs.session import write_submit_properties  # noqa: PLC0415

    settings = settings_of(ctx)
    path = output or settings.stack.home / "spark" / "k2-spark.conf"
    click.echo(write_submit_properties(settings, path.resolve()))


@lake.command("maintain")
@click.option(
    "--schedule",
    "schedule_s",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Run again every SECONDS until Ctrl-C (default: once).",
)
@click.option(
    "--table",
    "tables",
    multiple=True,
    help="Only this table, as namespace.name; repeatable (default: every table).",
)
@click.pass_context
def lake_maintain(ctx: click.Context, schedule_s: float | None, tables: tuple[str, ...]) -> None:
    """Compact small files, expire old snapshots, remove orphan files, rewrite manifests.

    Safe while the streaming jobs write. Retention and sizes: K2_MAINTENANCE__* settings.
    """
    from k2.lake.maintenance import run_maintenance  # noqa: PLC0415

    run_maintenance(settings_of(ctx), list(tables) or None, schedule_s, _stop_on_signals())


# ---------------------------------------------------------------------------------------------
# ingest


@main.command("ingest")
@click.option(
    "--exchange", required=True, type=click.Choice(KNOWN_EXCHANGES), help="Venue to ingest."
)
@click.option(
    "--symbols",
    help="Comma-separated symbols as the venue names them (default: K2_INGEST__<VENUE>_SYMBOLS).",
)
@click.option(
    "--source",
    type=click.Choice(["live", "simulator"]),
    help="live venues, or a local `k2 simulate` at K2_INGEST__SIMULATOR_URL (default: live).",
)
@click.option(
    "--kraken-protocol",
    type=click.Choice(["kraken-v2", "kraken-v1"]),
    help="Kraken WebSocket version (default: kraken-v2).",
)
@click.option(
    "--binance-stream",
    type=click.Choice(["trade", "aggTrade"]),
    help="Binance stream (default: trade).",
)
@click.option("--simulator-url", help="Base URL of `k2 simulate` for --source simulator.")
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0),
    help="Port of /metrics and /healthz (default: K2_INGEST__METRICS_PORT + the exchange's "
    "index; 0 picks a free one).",
)
@click.pass_context
def ingest(
    ctx: click.Context,
    exchange: str,
    symbols: str | None,
    source: str | None,
    kraken_protocol: str | None,
    binance_stream: str | None,
    simulator_url: str | None,
    metrics_port: int | None,
) -> None:
    """Stream one venue's trades into Kafka (market.crypto.trades.<exchange>.raw), durably.

    One Avro record per trade (Confluent wire format, key = symbol) with acks=all and
    idempotence. After a restart it resumes from the last trade id in the topic and backfills
    what it missed from the venue's REST history; what cannot be filled is published on
    market.crypto.gaps. Unparseable frames go to the .dlq topic. Prometheus /metrics and
    /healthz on K2_INGEST__METRICS_PORT (+1 per exchange after the first). Ctrl-C or SIGTERM
    flushes (bounded by K2_INGEST__FLUSH_TIMEOUT_S) and reports anything undelivered.
    """
    from k2.ingest.service import run_ingest  # noqa: PLC0415

    settings = settings_of(ctx)
    update: dict[str, Any] = {
        "source": source,
        "kraken_protocol": kraken_protocol,
        "binance_stream": binance_stream,
        "simulator_url": simulator_url,
    }
    if symbols:
        update[f"{exchange}_symbols"] = tuple(s.strip() for s in symbols.split(",") if s.strip())
    update = {key: value for key, value in update.items() if value is not None}
    if update:
        ingest_settings = settings.ingest.model_copy(update=update)
        settings = settings.model_copy(update={"ingest": ingest_settings})
    undelivered = run_ingest(settings, exchange, metrics_port)
    if undelivered:
        raise K2Error(
            f"{undelivered} records were not acknowledged by Kafka before the flush timeout; "
            "the next start backfills them from the venue"
        )


@main.command("run")
@click.option(
    "--source",
    type=click.Choice(["live", "simulator"]),
    help="live exchanges, or start the local simulator and feed from it "
    "(default: K2_INGEST__SOURCE, live).",
)
@click.pass_context
def run_command(ctx: click.Context, source: str | None) -> None:
    """Run the pipeline until Ctrl-C: the stack, one ingest per exchange, the Bronze job.

    Brings the embedded stack up if it is not running, starts every part as its own process
    (and the simulator with --source simulator), and on Ctrl-C or SIGTERM stops them in the
    order data flows, then the stack services it started. Every part logs to this console.
    """
    from k2.stack.pipeline import run_pipeline  # noqa: PLC0415

    settings = settings_of(ctx)
    run_pipeline(settings, source or settings.ingest.source, _stop_on_signals(), click.echo)
