"""Coinbase Advanced Trade public trades (``market_trades``), with the Exchange API's history."""

EXCHANGE = "coinbase"
