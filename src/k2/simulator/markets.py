"""Build each exchange's market from the settings: the listed symbols and where trades come from.

Without ``replay`` every listed symbol gets a deterministic :class:`SymbolGenerator` and the
total ``rate`` is shared out over all symbols of all exchanges with a skew (``skew``: a symbol's
weight is ``1 / rank**skew``, its rank its place in the exchange's catalogue, most traded first, as
trading concentrates on a few symbols on a real exchange; 0 spreads it evenly); ids start from the
wall clock unless ``id_base`` fixes them. With ``replay`` the recordings are the only source:
each exchange plays the trades recorded for it (pairs the catalog does not list are added to the
exchange's reference data), and the generator stays off."""

from __future__ import annotations

import functools
import time

from k2.errors import ConfigError
from k2.exchanges import EXCHANGES
from k2.simulator.exchange import ExchangeMarket, SyntheticSource
from k2.simulator.instruments import Instrument, catalog
from k2.simulator.market import SymbolGenerator
from k2.simulator.replay import RecordedTrade, ReplaySource, read_recording
from k2.simulator.settings import SimulatorConfig

_WEIGHT_SCALE = 1_000_000


def _listed(exchange: str, symbols: tuple[str, ...] | None) -> list[Instrument]:
    entries = catalog(exchange)
    if symbols is None:
        return list(entries)
    by_name = {inst.symbol: inst for inst in entries}
    unknown = [symbol for symbol in symbols if symbol not in by_name]
    if unknown:
        known = ", ".join(inst.symbol for inst in entries[:6])
        raise ConfigError(
            f"unknown {exchange} symbol(s) {unknown}; the simulator lists {len(entries)}, "
            f"for example {known}"
        )
    return [by_name[symbol] for symbol in symbols]


def symbol_weight(exchange: str, symbol: str, skew: float) -> int:
    """The integer weight ``1/rank**skew`` (scaled) of a symbol, its rank from the exchange's
    catalogue order."""
    weight: int = round(_WEIGHT_SCALE / _ranks(exchange)[symbol] ** skew)
    return max(1, weight)


@functools.cache
def _ranks(exchange: str) -> dict[str, int]:
    return {inst.symbol: index + 1 for index, inst in enumerate(catalog(exchange))}


def _weights(exchange: str, instruments: list[Instrument], skew: float) -> list[int]:
    return [symbol_weight(exchange, inst.symbol, skew) for inst in instruments]


def build_markets(config: SimulatorConfig) -> dict[str, ExchangeMarket]:
    """One :class:`ExchangeMarket` per exchange of the registry, with its sources attached."""
    listed = {name: _listed(name, config.exchange(name).symbols) for name in EXCHANGES}
    markets = {
        exchange: ExchangeMarket(exchange, instruments, config.retention, config.seed)
        for exchange, instruments in listed.items()
    }
    if config.replay:
        recorded: dict[str, list[RecordedTrade]] = {name: [] for name in EXCHANGES}
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
        weights = {ex: _weights(ex, insts, config.skew) for ex, insts in listed.items()}
        share = sum(sum(w) for w in weights.values())
        id_base = time.time_ns() // 1000 if config.id_base is None else config.id_base
        for exchange, instruments in listed.items():
            generators = [SymbolGenerator(inst, config.seed, id_base) for inst in instruments]
            markets[exchange].sources.append(
                SyntheticSource(
                    generators, config.rate, share, config.trades_per_symbol, weights[exchange]
                )
            )
    for exchange in config.lose_exchanges:
        if config.lose_every:
            markets[exchange].set_loss(config.lose_every)
    return markets
