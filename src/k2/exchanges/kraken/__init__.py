"""Kraken spot public trades over WebSocket v1 (``wss://ws.kraken.com``) and v2 (the default)."""

EXCHANGE = "kraken"
