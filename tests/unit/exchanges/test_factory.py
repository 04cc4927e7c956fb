"""The exchange factory: adapters and feed specs by name, and metrics ports that never meet."""

from __future__ import annotations

import dataclasses

import pytest

from k2.config import IngestSettings, Settings
from k2.errors import ExchangeError
from k2.exchanges import EXCHANGES
from k2.exchanges.factory import adapter_for, feed_spec, metrics_port, stream_metrics_port


def _defaults() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_published_ports_stay_where_they_were() -> None:
    """Kraken 9400, Binance 9401, the streaming job right after the exchanges (9402 with these
    two); shard I adds 10 * I."""
    ingest = _defaults().ingest
    assert [metrics_port(ingest, name) for name in ("kraken", "binance")] == [9400, 9401]
    assert _defaults().stream.metrics_port == stream_metrics_port() == 9400 + len(EXCHANGES)
    assert metrics_port(ingest, "binance", shard=3) == 9431
    assert metrics_port(ingest.model_copy(update={"metrics_port": 0}), "kraken") == 0
    with pytest.raises(ExchangeError, match="unknown exchange 'nosuch'"):
        metrics_port(ingest, "nosuch")


@pytest.mark.parametrize("extra", [0, 1, 7, 8, 9, 23])
def test_ingest_and_stream_ports_never_meet_for_any_registry_size(
    extra: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However many exchanges the registry holds (up to ten and beyond) and however many
    shards each runs, every ingest and the streaming job have a port of their own."""
    template = EXCHANGES["kraken"]
    for index in range(extra):
        name = f"extra{index}"
        monkeypatch.setitem(EXCHANGES, name, dataclasses.replace(template, name=name))
    ingest = IngestSettings()
    ports = [metrics_port(ingest, name, shard) for name in EXCHANGES for shard in range(10)] + [
        stream_metrics_port()
    ]
    assert len(ports) == len(set(ports)) == 10 * len(EXCHANGES) + 1


def test_the_factory_builds_adapter_and_spec_from_the_ingest_section() -> None:
    """The simulator source points the feed at the simulator's URLs for that exchange."""
    ingest = IngestSettings(source="simulator", simulator_url="http://127.0.0.1:8765/")
    adapter = adapter_for("kraken", ingest)
    spec = feed_spec(ingest, adapter)
    assert adapter.exchange == "kraken" and spec.symbols == ("BTC/USD", "ETH/USD")
    assert (spec.ws_url, spec.rest_url) == ("ws://127.0.0.1:8765/v2", "http://127.0.0.1:8765")
    live = feed_spec(IngestSettings(), adapter_for("binance", IngestSettings()))
    assert live.ws_url is None and live.symbols == ("BTCUSDT", "ETHUSDT")
