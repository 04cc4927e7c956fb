"""Requests generated from the API's own OpenAPI document (schemathesis) never make it fail:
every answer is a documented refusal or a result, never a 5xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from k2.api.app import create_app
from k2.config import ApiSettings
from tests.conftest import make_settings
from tests.integration import gold_rows
from tests.integration.gold_rows import BINANCE_BTC, KRAKEN_ETH

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The API over a small Gold (two symbols, their bars, a gap), loaded over ASGI."""
    base = make_settings(tmp_path_factory.mktemp("fuzzlake"))
    lake = base.model_copy(
        update={
            "api": ApiSettings(
                refresh_interval_s=0.2, rate_limit_per_s=10_000.0, rate_limit_burst=10_000
            )
        }
    )
    catalog = gold_rows.create_gold(lake)
    start = datetime.now(UTC) - timedelta(hours=3)
    trades = gold_rows.trades(BINANCE_BTC, start, 600, 15_000_000)
    trades += gold_rows.trades(KRAKEN_ETH, start, 200, 45_000_000)
    gold_rows.append(catalog, "gold.trades", trades)
    gold_rows.append(catalog, "gold.ohlcv_1m", gold_rows.bars(trades, "1m"))
    gold_rows.append(catalog, "gold.gaps", [gold_rows.gap(BINANCE_BTC, detected_us=start)])
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(lake))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case: Any) -> None:
    """Any request the OpenAPI document allows is answered without a 5xx."""
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
