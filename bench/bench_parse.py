"""Parse-and-normalise throughput per protocol on one core (trades per second).

Frames are rendered with each exchange's own ``wire`` module (one trade per frame, the common case
on every exchange), then timed through ``parse`` and ``normalise`` exactly as the feed clients and
the Silver job use them. ``run()`` returns the figures; running the module prints them as JSON.
"""

from __future__ import annotations

import json
import platform
import random
import sys
import time
from collections.abc import Callable

from k2.exchanges.base import Envelope, Protocol_
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.binance.normalise import normalise_trade as normalise_binance
from k2.exchanges.binance.parse import parse_frame as parse_binance
from k2.exchanges.kraken import wire as kraken_wire
from k2.exchanges.kraken.normalise import V1OccurrenceCounter
from k2.exchanges.kraken.normalise import normalise_trade as normalise_kraken
from k2.exchanges.kraken.parse import parse_v1_frame, parse_v2_frame

START_US = 1_700_000_000_000_000


def _price(rng: random.Random) -> str:
    return f"{rng.uniform(20_000, 90_000):.2f}"


def _qty(rng: random.Random) -> str:
    return f"{rng.uniform(0.00001, 3):.8f}"


def _frames(protocol: Protocol_, count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    frames = []
    for i in range(count):
        us = START_US + i * 1000
        if protocol == "kraken-v1":
            fields = kraken_wire.v1_trade_fields(
                _price(rng), _qty(rng), kraken_wire.format_time_v1(us), "b", "l"
            )
            frames.append(kraken_wire.render_v1_trades(119930881, "XBT/USD", [fields]))
        elif protocol == "kraken-v2":
            fields = kraken_wire.v2_trade_fields(
                "BTC/USD", "buy", _price(rng), _qty(rng), "limit", i,
                kraken_wire.format_timestamp_v2(us),
            )  # fmt: skip
            frames.append(kraken_wire.render_v2_trades([fields], "update"))
        elif protocol == "binance-trade":
            fields = binance_wire.trade_fields(
                "BTCUSDT", i, _price(rng), _qty(rng), us // 1000, True
            )
            frames.append(binance_wire.render_trade(fields, "btcusdt@trade"))
        else:
            fields = binance_wire.agg_trade_fields(
                "BTCUSDT", i, _price(rng), _qty(rng), i, i, us // 1000, False
            )
            frames.append(binance_wire.render_agg_trade(fields, "btcusdt@aggTrade"))
    return frames


def _pipeline(protocol: Protocol_) -> Callable[[str, Envelope], int]:
    """parse + normalise of one frame, as the client and Silver do it; returns trades done."""
    if protocol == "kraken-v1":
        counter = V1OccurrenceCounter()

        def kraken_v1(text: str, envelope: Envelope) -> int:
            trades = parse_v1_frame(text, envelope).trades
            for raw in trades:
                normalise_kraken(counter.assign(raw))
            return len(trades)

        return kraken_v1
    if protocol == "kraken-v2":

        def kraken_v2(text: str, envelope: Envelope) -> int:
            trades = parse_v2_frame(text, envelope).trades
            for raw in trades:
                normalise_kraken(raw)
            return len(trades)

        return kraken_v2
    assets = {"BTCUSDT": ("BTC", "USDT")}

    def binance(text: str, envelope: Envelope) -> int:
        trades = parse_binance(text, envelope).trades
        for raw in trades:
            normalise_binance(raw, assets, "MILLISECOND")
        return len(trades)

    return binance


def measure(protocol: Protocol_, count: int) -> float:
    """Trades per second through parse + normalise for ``count`` one-trade frames."""
    frames = _frames(protocol, count)
    step = _pipeline(protocol)
    envelope = Envelope(START_US, "bench", 0, protocol)
    done = 0
    started = time.perf_counter()
    for text in frames:
        done += step(text, envelope)
    elapsed = time.perf_counter() - started
    return done / elapsed


def run(trades_per_protocol: int = 50_000) -> dict[str, object]:
    """Measure every protocol; returns ``{"parse_normalise_trades_per_s": {protocol: rate}}``."""
    protocols: tuple[Protocol_, ...] = (
        "kraken-v1",
        "kraken-v2",
        "binance-trade",
        "binance-aggtrade",
    )
    rates = {protocol: round(measure(protocol, trades_per_protocol)) for protocol in protocols}
    return {
        "benchmark": "parse_normalise",
        "trades_per_protocol": trades_per_protocol,
        "parse_normalise_trades_per_s": rates,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
