"""``k2 simulate``: the local exchange simulator."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import click

from k2.cli.context import comma_list, settings_of
from k2.exchanges import EXCHANGES
from k2.simulator.exchanges import fault_protocols, sections


@click.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=8765, show_default=True, help="Port; 0 picks a free one.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the market.")
@click.option(
    "--id-base",
    type=int,
    help="Trade ids start above this; default: the clock in microseconds, so ids keep rising "
    "across restarts as an exchange's do.",
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
    help="A symbol's share of the rate is 1/rank**skew (rank in the exchange's catalogue, most "
    "traded first); 0 spreads the rate evenly. [1]",
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
    "--fault-protocol",
    "protocol",
    type=click.Choice(fault_protocols()),
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
@click.option("--book-drop-every", type=int, help="Leave out every N-th book update.")
@click.option(
    "--book-checksum-every", type=int, help="Send a wrong checksum with every N-th book update."
)
@click.option(
    "--book-jump-every", type=int, help="Let the sequence of every N-th book update jump."
)
@click.option(
    "--stale-book-snapshots",
    "stale_snapshots",
    type=int,
    help="Serve the next N REST book snapshots stale (the oldest state the exchange knows).",
)
@click.option(
    "--lose-every",
    type=int,
    help="The exchanges lose every N-th trade id from their streams (REST still has it).",
)
@click.option(
    "--lose-exchange",
    "lose_exchanges",
    multiple=True,
    type=click.Choice(list(EXCHANGES)),
    help="Exchanges that lose ids (default: every one); repeatable.",
)
@click.option(
    "--urls-file",
    type=click.Path(dir_okay=False),
    help="Also write the URLs as JSON to this file once listening.",
)
@click.pass_context
def simulate(ctx: click.Context, /, urls_file: str | None, **options: Any) -> None:
    """Run a local exchange simulator: every exchange K2 knows, WebSocket and REST.

    Speaks each exchange's documented protocol (acks, snapshots, heartbeats, pings, limits) from a
    deterministic synthetic market or a replayed recording, injects faults on demand (also at run
    time: POST /_sim/faults) and writes every trade it sends to --ledger. Prints the URLs to
    point clients at; Ctrl-C stops it.
    """
    from k2.simulator.runner import build_config, run

    settings_of(ctx)  # configures logging
    options["reject_symbols"] = tuple(options["reject_symbols"])
    options["lose_exchanges"] = tuple(options["lose_exchanges"]) or None
    run(build_config(options), urls_file, click.echo)


def exchange_options() -> list[click.Option]:
    """One option per field of each exchange's simulator section, in the registry's order:
    ``--<exchange>-symbols`` and the exchange's own limits (``--kraken-idle``, ...)."""
    options = []
    for name, section in sections().items():
        options.append(
            click.Option(
                [f"--{name}-symbols", f"{name}_symbols"],
                callback=comma_list,
                help=section.symbols_help,
            )
        )
        for item in fields(section):
            if item.name == "symbols":
                continue
            flag = item.metadata.get("flag", item.name.replace("_", "-"))
            options.append(
                click.Option(
                    [f"--{name}-{flag}", f"{name}_{item.name}"],
                    type=type(item.default),
                    help=f"{item.metadata['help']} [{item.default:g}]",
                )
            )
    return options


# The exchanges' options follow the market's, before the fault options.
_FIRST_FAULT = next(i for i, p in enumerate(simulate.params) if p.name == "protocol")
simulate.params[_FIRST_FAULT:_FIRST_FAULT] = exchange_options()
