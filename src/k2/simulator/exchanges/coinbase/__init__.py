"""Coinbase Advanced Trade on the local simulator: the market channel and the public REST."""
