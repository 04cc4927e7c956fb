"""A local exchange simulator: Kraken v1/v2 and Binance spot, WebSocket and REST, on one port.

Faithful enough to the venues' documented behaviour that a client written from their docs cannot
tell the difference; deterministic for a seed; with faults on demand and a ledger of every trade it
sent. Start it with ``k2 simulate`` or, in tests::

    async with Simulator(SimulatorConfig(ledger_path=tmp / "ledger.jsonl")) as sim:
        sim.urls.kraken_v2          # ws://127.0.0.1:<port>/v2
        sim.add_fault(FaultRule(protocol="binance", drop_after_trades=100))
        read_ledger(sim.ledger_path)
"""

from k2.simulator.faults import FaultRule
from k2.simulator.ledger import LedgerEntry, delivered, read_ledger
from k2.simulator.server import Simulator, SimulatorUrls
from k2.simulator.settings import SimulatorConfig

__all__ = [
    "FaultRule",
    "LedgerEntry",
    "Simulator",
    "SimulatorConfig",
    "SimulatorUrls",
    "delivered",
    "read_ledger",
]
