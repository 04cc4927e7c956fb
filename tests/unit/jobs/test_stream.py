"""The streaming query's Kafka source: the same connection settings as every client, and a cap per
micro-batch that keeps up with the ingest."""

from __future__ import annotations

from pathlib import Path

from k2.config import KafkaSettings, Settings, StreamSettings
from k2.jobs.layout import layout
from k2.jobs.stream import kafka_source_options

# The ingest's bursts, all exchanges together, that the stream keeps up with (StreamSettings).
INGEST_BURST_PER_S = 100_000


def test_kafka_source_options_carry_sasl_and_tls() -> None:
    """Spark's Kafka source reaches a secured cluster with the same bootstrap servers, SASL login
    and CA file as every other K2 client."""
    kafka = KafkaSettings(
        bootstrap_servers="b:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="k2",
        sasl_password='pa"ss',
        ssl_ca_location=Path("/ca.pem"),
    )
    settings = Settings(kafka=kafka, _env_file=None)
    options = kafka_source_options(settings.kafka_config(), settings.stream, ["t", "u"], "earliest")
    assert options["subscribe"] == "t,u"
    assert options["kafka.bootstrap.servers"] == "b:9093"
    assert options["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="k2" password="pa\\"ss";'
    )
    assert options["kafka.ssl.truststore.location"] == "/ca.pem"
    assert options["maxOffsetsPerTrigger"] == str(StreamSettings().max_offsets_per_trigger)


def test_default_trigger_admits_more_than_the_ingest_bursts() -> None:
    """With the default settings, one micro-batch of the stream reads all the records the ingest
    writes to every topic in a burst over one trigger interval."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    topics = layout(settings).topics
    options = kafka_source_options(settings.kafka_config(), settings.stream, topics, "earliest")
    assert options["subscribe"].split(",") == list(topics)  # one query: one cap for every topic
    burst = INGEST_BURST_PER_S * settings.stream.trigger_interval_s
    assert int(options["maxOffsetsPerTrigger"]) >= burst
