"""Binance spot in the simulator: raw and combined market streams, the public REST endpoints,
its symbols."""
