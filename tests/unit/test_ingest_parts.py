"""Pure parts of the ingest: raw trades of every protocol become valid Avro records that keep the
venue's values exactly, REST history rows become the same trades, and REST pacing waits as told."""

from __future__ import annotations

import asyncio
import io
import time
from decimal import Decimal
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from k2.domain import datetime_from_micros
from k2.errors import RateLimitedError
from k2.exchanges.base import Envelope
from k2.exchanges.binance import wire as binance_wire
from k2.exchanges.binance.adapter import BinanceAdapter
from k2.exchanges.binance.config import BinanceSettings
from k2.exchanges.binance.parse import parse_frame as parse_binance
from k2.exchanges.kraken import wire as kraken_wire
from k2.exchanges.kraken.adapter import KrakenAdapter, _rest_trade
from k2.exchanges.kraken.config import KrakenSettings
from k2.exchanges.kraken.normalise import normalise_trade as normalise_kraken
from k2.exchanges.kraken.parse import parse_frame as parse_kraken
from k2.ingest.avro import ConfluentEncoder
from k2.schemas import schema_json
from k2.transport.http import RestPacer

US = 1_718_000_000_123_456


def round_trip(schema_name: str, record: dict[str, Any]) -> dict[str, Any]:
    schema = parse_schema(schema_json(schema_name))
    buffer = io.BytesIO()
    schemaless_writer(buffer, schema, record)
    buffer.seek(0)
    decoded: dict[str, Any] = schemaless_reader(buffer, schema, schema)  # type: ignore[call-arg,assignment]
    return decoded


def envelope(protocol: Any) -> Envelope:
    return Envelope(US, "c1", 7, protocol)


def test_kraken_v2_trade_record_keeps_the_exact_text() -> None:
    frame = kraken_wire.render_v2_trades(
        [
            kraken_wire.v2_trade_fields(
                "BTC/USD",
                "buy",
                "65000.10",
                "0.00000001",
                "limit",
                42,
                kraken_wire.format_timestamp_v2(US),
            )
        ],
        "update",
    )
    (trade,) = parse_kraken(frame, envelope("kraken-v2")).trades
    venue = KrakenAdapter(KrakenSettings())
    record = round_trip("kraken_raw", venue.to_record(trade, venue.message_id(trade), "t"))
    assert record["price"] == "65000.10" and record["qty"] == "0.00000001"
    assert record["trade_id"] == 42 and record["protocol"] == "kraken-v2"
    assert record["message_id"] == "kraken:BTC/USD:42"
    assert venue.record_trade_id(record) == 42
    assert venue.record_exchange_us(record) == venue.exchange_us(trade) == US


def test_kraken_v1_trade_record_has_no_id_and_its_exact_time() -> None:
    time_text = kraken_wire.format_time_v1(US)
    fields = kraken_wire.v1_trade_fields("5541.20000", "0.15850568", time_text, "s", "l")
    frame = kraken_wire.render_v1_trades(42, "XBT/USD", [fields])
    (trade,) = parse_kraken(frame, envelope("kraken-v1")).trades
    venue = KrakenAdapter(KrakenSettings(protocol="kraken-v1"))
    record = round_trip("kraken_raw", venue.to_record(trade, venue.message_id(trade), "t"))
    assert record["trade_id"] is None and record["time"] == "1718000000.123456"
    assert record["message_id"].startswith("kraken:XBT/USD:")
    assert venue.record_trade_id(record) is None
    assert venue.record_exchange_us(record) == US


def test_kraken_rest_row_is_the_same_trade_as_v2() -> None:
    row = ["65000.10000", "0.00000001", Decimal("1718000000.123456"), "b", "l", "", 42]
    trade = _rest_trade("BTC/USD", row, US, 0)
    venue = KrakenAdapter(KrakenSettings())
    assert venue.message_id(trade) == "kraken:BTC/USD:42"
    assert trade.envelope.protocol == "kraken-rest"
    normalised = normalise_kraken(trade)
    assert normalised.price == Decimal("65000.1") and normalised.side == "buy"
    assert normalised.trade_id == "42"
    record = round_trip("kraken_raw", venue.to_record(trade, venue.message_id(trade), "t"))
    assert record["time"] == "1718000000.123456" and record["connection_id"] == "rest"
    assert venue.record_exchange_us(record) == US


@pytest.mark.parametrize("stream", ["trade", "aggTrade"])
def test_binance_record_names_every_payload_letter(stream: Any) -> None:
    if stream == "trade":
        fields = binance_wire.trade_fields("BTCUSDT", 7, "0.00100000", "2.5", US, True)
        frame = binance_wire.render_trade(fields, "btcusdt@trade")
    else:
        fields = binance_wire.agg_trade_fields("BTCUSDT", 9, "0.001", "2.5", 3, 5, US, False)
        frame = binance_wire.render_agg_trade(fields, "btcusdt@aggTrade")
    (trade,) = parse_binance(frame, envelope("binance-trade")).trades
    venue = BinanceAdapter(BinanceSettings(stream=stream))
    record = round_trip("binance_raw", venue.to_record(trade, venue.message_id(trade), "t"))
    assert record["price"] == fields["p"] and record["quantity"] == "2.5"
    assert record["trade_time"] == US and record["time_unit"] == "MICROSECOND"
    assert record["stream"] == f"btcusdt@{stream}"
    expected_id = 7 if stream == "trade" else 9
    assert venue.record_trade_id(record) == expected_id
    assert venue.record_exchange_us(record) == US
    other = BinanceAdapter(BinanceSettings(stream="aggTrade" if stream == "trade" else "trade"))
    assert other.record_trade_id(record) is None  # another id sequence is no resume point


def test_confluent_encoder_frames_the_body() -> None:
    encoder = ConfluentEncoder("gap", 258)
    record = {
        "exchange": "kraken",
        "exchange_symbol": "BTC/USD",
        "first_missing_id": 1,
        "last_missing_id": 2,
        "from_us": None,
        "to_us": None,
        "detected_by": "reconnect",
        "backfilled": True,
        "backfilled_count": 2,
        "reason": None,
        "detected_us": US,
        "k2_version": "t",
    }
    encoded = encoder.encode(record)
    assert encoded[:5] == b"\x00\x00\x00\x01\x02"
    schema = parse_schema(schema_json("gap"))
    decoded = schemaless_reader(io.BytesIO(encoded[5:]), schema, schema)  # type: ignore[call-arg]
    assert isinstance(decoded, dict)
    assert decoded.pop("detected_us") == datetime_from_micros(US)
    assert decoded == {k: v for k, v in record.items() if k != "detected_us"}


def test_rest_pacer_spaces_requests_and_waits_out_a_rate_limit() -> None:
    calls: list[float] = []

    async def scenario() -> object:
        pacer = RestPacer(0.05, max_rate_limited=2)

        async def request() -> object:
            calls.append(time.monotonic())
            if len(calls) == 2:
                raise RateLimitedError("429", 0.2)
            return len(calls)

        await pacer.call(request)
        return await pacer.call(request)

    assert asyncio.run(scenario()) == 3
    assert calls[1] - calls[0] >= 0.045
    assert calls[2] - calls[1] >= 0.19


def test_rest_pacer_gives_up_after_repeated_rate_limits() -> None:
    async def scenario() -> object:
        pacer = RestPacer(0.0, max_rate_limited=1)

        async def request() -> object:
            raise RateLimitedError("429", 0.01)

        return await pacer.call(request)

    with pytest.raises(RateLimitedError):
        asyncio.run(scenario())
