"""Bybit v5 spot public trades (``publicTrade.<SYMBOL>`` on ``/v5/public/spot``)."""

EXCHANGE = "bybit"
