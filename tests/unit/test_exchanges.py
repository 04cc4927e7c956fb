"""Every list derived from the exchange registry agrees with it, and a third exchange registered
in a test shows up in each without any other edit."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import typing
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from pydantic import BaseModel

from k2.cli import ingest as ingest_cli
from k2.cli import jobs as jobs_cli
from k2.cli import simulate as simulate_cli
from k2.config import IngestSettings, Settings
from k2.errors import ExchangeError
from k2.exchanges import EXCHANGES, PROTOCOLS, ExchangeEntry, entry_for_protocol, exchange_entry
from k2.exchanges.booksync import Books
from k2.exchanges.contract import FeedSpec
from k2.exchanges.factory import adapter_for, metrics_port, stream_metrics_port
from k2.monitoring.alert_rules import rules_document
from k2.monitoring.dashboards import dashboards
from k2.monitoring.parts import check_part_ports, part_ports
from k2.monitoring.prometheus_config import prometheus_document, scrape_targets
from k2.schemas import schema_text
from k2.simulator import exchanges
from k2.simulator.replay import read_jsonl
from k2.simulator.server import Simulator, simulator_urls
from k2.simulator.settings import SimulatorConfig, simulator_config_type
from tests.simulated import unlisted

SIMULATOR = "http://127.0.0.1:8765"
# What Silver and Gold read of every exchange's SQL normalisation.
SILVER_KEYS = {
    "base", "quote", "price", "quantity", "side", "order_type", "exchange_us", "trade_id",
    "needs_trade_id", "message_id", "complete",
}  # fmt: skip


def _defaults() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def _choices(command: click.Command, name: str) -> list[str]:
    param = next(p for p in command.params if p.name == name)
    assert isinstance(param.type, click.Choice)
    return list(param.type.choices)


def _literal_values(module: Any) -> Iterator[str]:
    """Every string of a Literal type a module declares, as an alias or a settings field."""
    for value in vars(module).values():
        if typing.get_origin(value) is typing.Literal:
            yield from (arg for arg in typing.get_args(value) if isinstance(arg, str))
        if isinstance(value, type) and issubclass(value, BaseModel):
            for field in value.model_fields.values():
                if typing.get_origin(field.annotation) is typing.Literal:
                    yield from (a for a in typing.get_args(field.annotation) if isinstance(a, str))


def test_protocols_are_the_registrys_and_every_one_reaches_its_client() -> None:
    """Each exchange's WebSocket protocols can be chosen in its settings and reach its feed
    client; the literal types its package declares for protocols name only registry ones."""
    assert (
        tuple(p for entry in EXCHANGES.values() for p in (*entry.protocols, entry.rest_protocol))
        == PROTOCOLS
    )
    for name, entry in EXCHANGES.items():
        for protocol in entry.protocols:
            assert entry_for_protocol(protocol) is entry
            section = IngestSettings().exchange(name)
            ingest = IngestSettings().with_exchange(name, **section.protocol_changes(protocol))
            options = adapter_for(name, ingest).options(FeedSpec(("X",)))
            assert options.protocol == protocol
        for role in ("config", "client", "wire", "adapter"):
            declared = {v for v in _literal_values(entry.module(role)) if v.startswith(f"{name}-")}
            assert declared <= set(PROTOCOLS), (name, role, declared)


def test_every_exchange_has_its_book_rule() -> None:
    """Each exchange's ``book`` module holds the books of one connection, on the shared base."""
    for entry in EXCHANGES.values():
        module = entry.module("book")
        found = [
            value
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, Books) and value is not Books
        ]
        assert len(found) == 1, (entry.name, found)


def test_settings_and_cli_choices_are_the_registrys() -> None:
    """The settings and every CLI choice of exchange, protocol and simulator option list exactly the
    registry's exchanges."""
    names = list(EXCHANGES)
    assert list(_defaults().exchanges) == names
    assert all(IngestSettings().exchange(name) is not None for name in names)
    assert _choices(ingest_cli.ingest, "exchange") == names
    assert _choices(ingest_cli.ingest, "protocol") == [
        p for entry in EXCHANGES.values() for p in entry.protocols
    ]
    assert _choices(jobs_cli.job_stream, "exchanges") == names
    assert _choices(simulate_cli.simulate, "lose_exchanges") == names
    assert _choices(simulate_cli.simulate, "protocol") == list(exchanges.fault_protocols())
    assert set(names) <= set(exchanges.fault_protocols())
    options = {p.name for p in simulate_cli.simulate.params}
    for name, section in exchanges.sections().items():
        assert {f"{name}_{item.name}" for item in fields(section)} <= options


def test_metrics_ports_are_distinct_and_one_per_exchange() -> None:
    """Every exchange's ingest gets a metrics port of its own and no two parts share one."""
    settings = _defaults()
    ports = part_ports(settings.exchanges, settings.ingest, settings.stream, settings.api)
    assert [p.part for p in ports if p.part.startswith("ingest-")] == [
        f"ingest-{n}" for n in EXCHANGES
    ]
    assert len({p.port for p in ports}) == len(ports)
    check_part_ports(settings.exchanges, settings.ingest, settings.stream, settings.api)


def _resolve(app: web.Application, url: str) -> Any:
    request = make_mocked_request("GET", urlsplit(url).path or "/", app=app)
    return request.app.router.resolve(request)


async def _routes_agree() -> None:
    sim = Simulator(SimulatorConfig(**unlisted()))
    assert list(sim.urls.as_dict())[-1] == "admin"
    app = web.Application()
    app.add_routes(sim.routes())
    paths = [(r.method, r.path) for r in sim.routes() if isinstance(r, web.RouteDef)]
    assert len(paths) == len(set(paths)), "two exchanges serve one path"
    for name in EXCHANGES:
        package = exchange_entry(name).simulator_package
        served = [r.path for r in sim.routes() if r.handler.__module__.startswith(package)]
        assert served, f"{name} serves nothing"
        server = exchanges.server(name)
        own = server.urls("http://h", "ws://h")
        assert own and all(key.startswith(f"{name}_") for key in own)
        assert own.items() <= simulator_urls("h").as_dict().items()
        for url in server.examples("ws://h").values():  # whole URLs: each is one of its routes
            request = make_mocked_request("GET", urlsplit(url).path, app=app)
            match = await app.router.resolve(request)
            assert match.handler.__module__.startswith(package), url
        for url in own.values():  # bases clients extend: each leads to its routes
            base = urlsplit(url).path.rstrip("/")
            assert any(path == base or path.startswith(base + "/") for path in served), url


def test_simulator_routes_and_urls_are_every_exchanges() -> None:
    """Each exchange serves its own paths, SimulatorUrls names each exchange's endpoints, and
    the URLs the ingest's adapters use on the simulator are the ones it publishes."""
    asyncio.run(_routes_agree())
    published = simulator_urls("127.0.0.1:8765").as_dict()
    for name, entry in EXCHANGES.items():
        for protocol in entry.protocols:
            section = IngestSettings().exchange(name)
            ingest = IngestSettings().with_exchange(name, **section.protocol_changes(protocol))
            ws_url, rest_url = adapter_for(name, ingest).simulator_urls(SIMULATOR)
            assert ws_url in published.values() and rest_url == published[f"{name}_rest"]


def test_every_exchange_has_its_raw_schema_and_silver_sql() -> None:
    """Every registered exchange has a raw Avro schema matching its records and Silver SQL giving
    every column Silver reads."""
    for name in EXCHANGES:
        adapter = adapter_for(name, IngestSettings())
        assert adapter.schema_name == f"{name}_raw"
        schema = json.loads(schema_text(adapter.schema_name))
        assert tuple(field["name"] for field in schema["fields"]) == adapter.record_fields
        assert set(exchange_entry(name).module("normalise").SILVER_SQL) == SILVER_KEYS


def test_dashboards_and_alert_rules_cover_every_exchange_through_its_label() -> None:
    """Each exchange is a scrape target labelled with its name, which the exchange dashboard's
    variable and every alert group by; no dashboard or rule names one exchange."""
    settings = _defaults()
    targets = scrape_targets(
        settings.stack.host, settings.exchanges, settings.ingest, settings.stream, settings.api
    )
    document = prometheus_document(settings.prometheus, targets)
    labelled = [
        static["labels"].get("exchange")
        for job in document["scrape_configs"]
        for static in job["static_configs"]
    ]
    assert [label for label in labelled if label] == list(EXCHANGES)
    rules = rules_document(settings.alerts, settings.ingest, settings.stream, settings.prometheus)
    text = json.dumps(dashboards()) + yaml.safe_dump(rules)
    assert "label_values(k2_ingest_connected, exchange)" in text
    assert not [name for name in EXCHANGES if f'"{name}"' in text or f"={name}" in text]


# --- a third exchange, registered here and nowhere else ---------------------------------------


@pytest.fixture
def fakex(monkeypatch: pytest.MonkeyPatch) -> ExchangeEntry:
    entry = dataclasses.replace(
        EXCHANGES["kraken"],
        name="fakex",
        protocols=("fakex-ws",),
        rest_protocol="fakex-rest",
        simulator_package="tests.fakes.fakex",
    )
    monkeypatch.setitem(EXCHANGES, "fakex", entry)
    return entry


def test_a_third_exchange_gets_ports_of_its_own(fakex: ExchangeEntry) -> None:
    """An exchange added to the registry gets its own metrics port after the others, and the
    streaming job's port moves past it."""
    settings = _defaults()
    settings = settings.model_copy(update={"exchanges": (*settings.exchanges, "fakex")})
    assert list(EXCHANGES)[-1] == "fakex"
    assert metrics_port(settings.ingest, "fakex") == 9400 + len(EXCHANGES) - 1
    assert settings.stream.metrics_port == stream_metrics_port() == 9400 + len(EXCHANGES)
    check_part_ports(settings.exchanges, settings.ingest, settings.stream, settings.api)
    assert "ingest-fakex" in [
        part.part
        for part in part_ports(settings.exchanges, settings.ingest, settings.stream, settings.api)
    ]


def test_a_third_exchange_is_in_every_simulator_list(fakex: ExchangeEntry, tmp_path: Path) -> None:
    """Its settings section, its options and fault protocols, its routes, URLs and market, and
    its ledger lines: all taken from its package through the registry."""
    assert entry_for_protocol("fakex-ws") is fakex
    config_type = simulator_config_type()
    config = config_type(fakex_symbols=("BTC-USD",), fakex_frame_limit=3)
    assert config.exchange("fakex") == exchanges.section_type("fakex")(("BTC-USD",), 3)
    assert exchanges.fault_protocols()[-2:] == ("fakex", "fakex-ws")
    assert {"--fakex-symbols", "--fakex-frame-limit"} <= {
        opt for option in simulate_cli.exchange_options() for opt in option.opts
    }
    sim = Simulator(config)
    assert sim.urls.fakex_ws.endswith("/fakex/ws") and list(sim.urls.as_dict())[-1] == "admin"
    assert "/fakex/api/time" in [getattr(route, "path", None) for route in sim.routes()]
    assert list(sim.market("fakex").instruments) == ["BTC-USD"]
    ledger = tmp_path / "fakex.jsonl"
    line = {"exchange": "fakex", "symbol": "BTC-USD", "trade_id": 9,
            "fields": {"p": "1.5", "q": "2", "t": 7, "side": "buy"}}  # fmt: skip
    ledger.write_text(json.dumps(line) + "\n")
    (trade,) = read_jsonl(ledger)
    assert (trade.exchange, trade.price, trade.trade_id) == ("fakex", "1.5", 9)


def test_the_registry_finds_exchanges_by_name_and_protocol_without_importing_them_early() -> None:
    """The registry finds an exchange by name or protocol and loads its classes only when asked, and
    an unknown name is refused listing the known ones."""
    assert set(EXCHANGES) == {"kraken", "binance", "coinbase", "okx", "bybit"}
    assert exchange_entry("kraken").default_protocol == "kraken-v2"
    assert entry_for_protocol("binance-aggtrade").name == "binance"
    assert exchange_entry("binance").client_type().__name__ == "BinanceFeedClient"
    assert exchange_entry("kraken").options_type().__name__ == "KrakenFeedOptions"
    with pytest.raises(ExchangeError, match="known: kraken, binance, coinbase"):
        exchange_entry("nosuch")
