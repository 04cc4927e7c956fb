"""K2's Avro schemas (``*.avsc`` beside this file) and the schema registry client."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def schema_text(name: str) -> str:
    """The text of ``<name>.avsc`` (``kraken_raw``, ``binance_raw``, ``dlq``, ``gap``)."""
    return resources.files(__package__).joinpath(f"{name}.avsc").read_text()


def schema_json(name: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(schema_text(name))
    return parsed


def raw_schema_name(exchange: str) -> str:
    """The raw schema of an exchange: one per exchange, covering all its protocol versions."""
    return f"{exchange}_raw"
