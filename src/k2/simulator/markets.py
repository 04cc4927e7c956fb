"""Build each venue's market from the settings: the listed symbols and where trades come from.

Without ``replay`` every listed symbol gets a deterministic :class:`SymbolGenerator` and the total
``rate`` is divided evenly over all symbols of all venues; ids start from the wall clock unless
``id_base`` fixes them. With ``replay`` the recordings are the only source: each venue plays the
trades recorded for it (pairs the catalog does not list are added to the venue's reference data),
and the generator stays off.
"""

from __future__ import annotations

import time

from k2.errors import ConfigError
from k2.simulator.instruments import (
    BINANCE,
    DEFAULT_INSTRUMENTS,
    KRAKEN,
    Instrument,
)
from k2.simulator.market import SymbolGenerator
from k2.simulator.replay import RecordedTrade, ReplaySource, read_recording
from k2.simulator.settings import SimulatorConfig
from k2.simulator.venue import SyntheticSource, VenueMarket


def _listed(exchange: str, symbols: tuple[str, ...]) -> list[Instrument]:
    catalog = {inst.symbol: inst for inst in DEFAULT_INSTRUMENTS[exchange]}
    unknown = [symbol for symbol in symbols if symbol not in catalog]
    if unknown:
        raise ConfigError(
            f"unknown {exchange} symbol(s) {unknown}; the simulator lists {sorted(catalog)}"
        )
    return [catalog[symbol] for symbol in symbols]


def build_markets(config: SimulatorConfig) -> dict[str, VenueMarket]:
    """One :class:`VenueMarket` per venue, with its sources attached."""
    listed = {
        KRAKEN: _listed(KRAKEN, config.kraken_symbols),
        BINANCE: _listed(BINANCE, config.binance_symbols),
    }
    markets = {
        exchange: VenueMarket(exchange, instruments, config.retention)
        for exchange, instruments in listed.items()
    }
    if config.replay:
        recorded: dict[str, list[RecordedTrade]] = {KRAKEN: [], BINANCE: []}
        for path in config.replay:
            for trade in read_recording(path):
                recorded[trade.exchange].append(trade)
        for exchange, trades in recorded.items():
            if trades:
                source = ReplaySource(
                    markets[exchange], trades, config.replay_speed, config.retention
                )
                markets[exchange].sources.append(source)
    else:
        share = sum(len(instruments) for instruments in listed.values())
        id_base = time.time_ns() // 1000 if config.id_base is None else config.id_base
        for exchange, instruments in listed.items():
            generators = [SymbolGenerator(inst, config.seed, id_base) for inst in instruments]
            markets[exchange].sources.append(
                SyntheticSource(generators, config.rate, share, config.trades_per_symbol)
            )
    for exchange in config.lose_exchanges:
        if config.lose_every:
            markets[exchange].set_loss(config.lose_every)
    return markets
