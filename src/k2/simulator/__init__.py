"""A local exchange simulator: every exchange of the registry (Kraken v1/v2 and Binance spot),
WebSocket and REST, on one port; each exchange's side lives in
``k2.simulator.exchanges.<exchange>``.

Faithful enough to the exchanges' documented behaviour that a client written from their docs
cannot tell the difference; deterministic for a seed; with faults on demand and a ledger of every
trade it sent. Start it with ``k2 simulate`` or, in tests::

    async with Simulator(SimulatorConfig(ledger_path=tmp / "ledger.jsonl")) as sim:
        sim.urls.kraken_v2          # ws://127.0.0.1:<port>/v2
        sim.add_fault(FaultRule(protocol="binance", drop_after_trades=100))
        read_ledger(sim.ledger_path)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from k2.simulator.faults import FaultRule
    from k2.simulator.ledger import LedgerEntry, delivered, read_ledger
    from k2.simulator.server import Simulator, SimulatorUrls
    from k2.simulator.settings import SimulatorConfig

# Imported on first use, so a command that only reads the simulator's options (the CLI) does
# not load the server.
_EXPORTS = {
    "FaultRule": "k2.simulator.faults",
    "LedgerEntry": "k2.simulator.ledger",
    "Simulator": "k2.simulator.server",
    "SimulatorConfig": "k2.simulator.settings",
    "SimulatorUrls": "k2.simulator.server",
    "delivered": "k2.simulator.ledger",
    "read_ledger": "k2.simulator.ledger",
}

__all__ = [
    "FaultRule",
    "LedgerEntry",
    "Simulator",
    "SimulatorConfig",
    "SimulatorUrls",
    "delivered",
    "read_ledger",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
