"""Binance spot public trades over combined WebSocket streams (``@trade`` or ``@aggTrade``)."""

EXCHANGE = "binance"
