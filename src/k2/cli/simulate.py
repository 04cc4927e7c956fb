"""``k2 simulate``: the local exchange simulator."""

from __future__ import annotations

from typing import Any

import click

from k2.cli.context import comma_list, settings_of
from k2.exchanges import EXCHANGE_NAMES


@click.command("simulate")
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
    help="Synthetic trades per second in total, shared out over all listed symbols (skewed: "
    "most go to the most traded, see --skew).",
)
@click.option(
    "--skew",
    type=float,
    help="A symbol's share of the rate is 1/rank**skew (rank in the venue's catalogue, most "
    "traded first); 0 spreads the rate evenly. [1]",
)
@click.option(
    "--kraken-symbols",
    callback=comma_list,
    help="Kraken pairs to list (v1 names, comma-separated); default: the whole universe of "
    "700 pairs (XBT/USD, ETH/USD, ... first).",
)
@click.option(
    "--binance-symbols",
    callback=comma_list,
    help="Binance symbols to list (comma-separated); default: the whole universe of 2,000 "
    "symbols (BTCUSDT, ETHUSDT, ... first).",
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
    "--kraken-msg-rate",
    type=int,
    help="Messages a Kraken connection may send per second before `Exceeded msg rate`. [20]",
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
    type=click.Choice(EXCHANGE_NAMES),
    help="Venues that lose ids (default: every one); repeatable.",
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
