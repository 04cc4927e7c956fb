"""OKX v5 public spot trades over WebSocket (``trades-all`` on the business endpoint)."""

EXCHANGE = "okx"
