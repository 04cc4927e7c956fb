"""Kraken in the simulator: WebSocket v1 and v2, the public REST endpoints, its pairs."""
