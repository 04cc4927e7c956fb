"""Bybit v5 spot on the simulator: ``/v5/public/spot`` and REST under ``/v5/market/``."""
