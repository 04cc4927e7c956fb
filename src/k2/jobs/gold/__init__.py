"""Gold: one row per trade for every exchange, the OHLCV bars, and the gap events."""
