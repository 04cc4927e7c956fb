"""The stages ``k2 doctor`` checks, in the order data flows (see :mod:`k2.ops.doctor`).

Each check looks at the real thing with a short deadline: Kafka's metadata and watermarks, the
registry's subjects, the catalog, a fresh exchange subscription, each service's own ``/metrics``,
the Bronze tables' settled offsets and the newest rows' times. A stage whose numbers should move
(deliveries, offsets, commits) is watched until they do or the deadline passes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from k2.config import Settings, revised
from k2.errors import K2Error
from k2.jobs.layout import layout
from k2.jobs.session import spark_jars
from k2.lake.catalog import namespaces, open_catalog
from k2.ops.components import Endpoint, endpoints, stale_reason
from k2.ops.data import TopicFigures, table_figures, topic_figures
from k2.ops.doctor import Broken, Stage
from k2.ops.external import kafka_brokers, object_store, spark_cluster
from k2.ops.probe import probe_exchange
from k2.run.record import RunRecord, read_run
from k2.stack.java import find_java
from k2.stack.kafka import KafkaBroker
from k2.stack.registry import REGISTRY_MIN_JAVA, SchemaRegistry
from k2.stack.scrape import Scrape, scrape
from k2.transport.topics import dlq_topic, gaps_topic, raw_topic
from k2.version import git_sha

_KAFKA_TIMEOUT_S = 5.0
_START = "start it with `k2 run` (or `make run`)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def watch_until_moved(read: Callable[[], float | None], timeout_s: float) -> tuple[float, float]:
    """Read a number until it rises above its first reading or ``timeout_s`` passes;
    (first, last)."""
    first = read()
    deadline = time.monotonic() + timeout_s
    last = first
    while time.monotonic() < deadline:
        time.sleep(0.5)
        last = read()
        if first is not None and last is not None and last > first:
            break
    return (first or 0.0), (last or 0.0)


class Doctor:
    """One doctor run: the settings once they are valid, and what earlier stages found."""

    def __init__(self, load: Callable[[], Settings], trade_timeout_s: float) -> None:
        self.load = load
        self.trade_timeout_s = trade_timeout_s
        self._settings: Settings | None = None
        self.catalog: Any = None
        self.run: RunRecord | None = None
        self.scrapes: dict[str, Scrape] = {}

    @property
    def settings(self) -> Settings:
        assert self._settings is not None, "the settings stage runs first"
        return self._settings

    def stages(self) -> list[Stage]:
        return [
            Stage("settings", "settings valid", self.check_settings),
            Stage("jvm", "Java and JVM artifacts present", self.check_jvm),
            Stage("broker", "broker reachable", self.check_broker),
            Stage("registry", "registry reachable, K2's subjects registered", self.check_registry),
            Stage("catalog", "catalog opens, namespaces exist", self.check_catalog),
            Stage("storage", "object store writable", self.check_storage),
            Stage("spark", "Spark master and workers alive", self.check_spark),
            # Stage names are published in `k2 doctor --json`: this one keeps its first name.
            Stage("venue", "exchange reachable: reference data, a live trade", self.check_exchange),
            Stage("ingest", "each ingest up and delivering", self.check_ingest),
            Stage("topics", "raw topic end offsets moving", self.check_topics),
            Stage("stream", "streaming job committing, lag bounded", self.check_stream),
            Stage("freshness", "every layer's newest row fresh", self.check_freshness),
            Stage("builds", "every service on the installed build", self.check_builds),
        ]

    # --------------------------------------------------------------------------- set-up stages

    def check_settings(self) -> str:
        try:
            self._settings = self.load()
        except K2Error as exc:
            raise Broken(str(exc), "fix the K2_* variable or .env line named above") from exc
        run = read_run(self.settings.stack.state_dir)
        self.run = run if run is not None and run.alive() else None
        if self.run is not None and self.run.source != self.settings.ingest.source:
            # `k2 run --source` overrides the setting: check the exchange the run reads from.
            ingest = revised(self.settings.ingest, source=self.run.source)
            self._settings = revised(self.settings, ingest=ingest)
        exchanges = ", ".join(self.settings.exchanges)
        return f"K2_HOME={self.settings.stack.state_dir}, exchanges {exchanges}"

    def check_jvm(self) -> str:
        stack = self.settings.stack
        try:
            java, major = find_java(17, stack.java_home, "K2_STACK__JAVA_HOME")
            found = [f"Java {major} ({java})"]
            spark_jars(stack.jvm_lib)
            if self.settings.kafka.bootstrap_servers is None and KafkaBroker(stack).version() == (
                "unknown"
            ):
                raise K2Error(f"Kafka jars missing in {stack.jvm_lib}; run `make jvm`")
            if self.settings.registry.url is None:
                if not SchemaRegistry(stack).app.exists():
                    raise K2Error(f"Apicurio Registry missing in {stack.jvm_lib}; run `make jvm`")
                _, major21 = find_java(
                    REGISTRY_MIN_JAVA,
                    stack.registry_java_home,
                    "K2_STACK__REGISTRY_JAVA_HOME",
                    search_system=True,
                )
                found.append(f"Java {major21} for the registry")
        except K2Error as exc:
            cause, _, fix = str(exc).partition("; ")
            raise Broken(cause, fix or "run `make jvm`") from exc
        return f"{', '.join(found)}; JVM artifacts in {stack.jvm_lib}"

    def check_broker(self) -> str:
        bootstrap = self.settings.kafka_bootstrap
        # librdkafka's own connection errors would interleave with the checklist: the verdict
        # below says it in one line.
        admin = AdminClient({**self.settings.kafka_config(), "log_level": "0"})
        try:
            names = set(admin.list_topics(timeout=_KAFKA_TIMEOUT_S).topics)
        except KafkaException as exc:
            raise Broken(
                f"Kafka at {bootstrap} does not answer within {_KAFKA_TIMEOUT_S:.0f} s",
                "start it with `k2 stack up` (or `make run`), or set K2_KAFKA__BOOTSTRAP_SERVERS",
            ) from exc
        prefix = self.settings.kafka.topic_prefix
        wanted = [raw_topic(e, prefix) for e in self.settings.exchanges]
        missing = [topic for topic in wanted if topic not in names]
        if missing:
            raise Broken(
                f"topic(s) {', '.join(missing)} missing", "create them: `k2 topics create`"
            )
        brokers, under = kafka_brokers(self.settings.kafka_config(), prefix)
        down = [b.address for b in brokers if not b.up]
        if down:
            raise Broken(
                f"broker(s) {', '.join(down)} of the cluster down ({under} partition(s) of K2's "
                f"topics under-replicated)",
                "restart the broker(s); K2 keeps writing while min.insync.replicas are in sync",
            )
        if under:
            raise Broken(
                f"{under} partition(s) of K2's topics under-replicated",
                "a broker is behind or missing: check every broker of the cluster",
            )
        return (
            f"{bootstrap}: {len(brokers)} broker(s), {len(names)} topics, K2's raw topics present"
        )

    def check_registry(self) -> str:
        from confluent_kafka.schema_registry import (  # noqa: PLC0415 - only if the doctor gets here
            SchemaRegistryClient,
        )

        url = self.settings.registry_url
        try:
            subjects = set(SchemaRegistryClient(self.settings.registry_config()).get_subjects())
        except Exception as exc:  # any failure means the registry cannot serve
            raise Broken(
                f"the registry at {url} does not answer ({_first_line(exc)})",
                "start it with `k2 stack up` (or `make run`), or set K2_REGISTRY__URL",
            ) from exc
        prefix = self.settings.kafka.topic_prefix
        topics = [raw_topic(e, prefix) for e in self.settings.exchanges]
        topics += [dlq_topic(e, prefix) for e in self.settings.exchanges] + [gaps_topic(prefix)]
        missing = [f"{topic}-value" for topic in topics if f"{topic}-value" not in subjects]
        if missing:
            raise Broken(
                f"subject(s) {', '.join(missing)} not registered",
                "an ingest registers its schemas when it starts: " + _START,
            )
        return f"{url}: {len(topics)} K2 subjects registered"

    def check_catalog(self) -> str:
        try:
            self.catalog = open_catalog(self.settings.lake_access())
            existing = {ns[0] for ns in self.catalog.list_namespaces()}
        except Exception as exc:  # pyiceberg raises many types for one cause
            raise Broken(
                f"the catalog {self.settings.catalog_uri} does not open ({_first_line(exc)})",
                "check K2_LAKE__CATALOG_URI and its credentials",
            ) from exc
        wanted = namespaces(self.settings.lake.namespace_prefix)
        missing = [ns for ns in wanted if ns not in existing]
        if missing:
            raise Broken(f"namespace(s) {', '.join(missing)} missing", "run `k2 lake init`")
        return f"{self.settings.catalog_uri.split('?')[0]}: {', '.join(wanted)}"

    def check_storage(self) -> str:
        found = object_store(self.settings.lake)
        if found is None:
            return f"warehouse {self.settings.warehouse} (no object store)"
        if not found.up:
            raise Broken(
                f"the object store at {found.address} refuses: {found.detail}",
                "check that it runs, K2_LAKE__S3_ENDPOINT and the credentials "
                "(K2_LAKE__S3_ACCESS_KEY_ID or the AWS chain)",
            )
        return f"{found.address}: {found.detail}"

    def check_spark(self) -> str:
        parts, _ = spark_cluster(self.settings.spark)
        if not parts:
            return f"Spark runs in the job's process ({self.settings.spark.master})"
        master, workers = parts[0], parts[1:]
        if not master.up:
            raise Broken(
                f"the Spark master {master.address} does not answer ({master.detail})",
                "start it, or check K2_SPARK__MASTER and K2_SPARK__MASTER_UI_URL",
            )
        dead = [w.address for w in workers if not w.up]
        if dead or not workers:
            named = f"worker(s) {', '.join(dead)} dead" if dead else "no worker registered"
            raise Broken(f"the Spark master {master.address}: {named}", "start the worker(s)")
        return f"{master.address}: {len(workers)} worker(s) alive"

    # ------------------------------------------------------------------------ data-flow stages

    def check_exchange(self) -> str:
        source = self.settings.ingest.source
        where = "the simulator" if source == "simulator" else "the exchange"
        fix = (
            f"check the simulator at {self.settings.ingest.simulator_url} (`k2 status`)"
            if source == "simulator"
            else "check network access and the exchange's status page; without internet run "
            "make run SOURCE=simulator"
        )
        seen = []
        for exchange in self.settings.exchanges:
            try:
                result = probe_exchange(self.settings.ingest, exchange, self.trade_timeout_s)
            except Exception as exc:  # unreachable, refused: all mean broken
                raise Broken(f"{exchange} via {where}: {_first_line(exc)}", fix) from exc
            if result.trade_s is None:
                raise Broken(
                    f"{exchange} via {where}: reference data read ({result.symbols} symbols) but "
                    f"no trade within {self.trade_timeout_s:.0f} s of a fresh subscription",
                    fix,
                )
            seen.append(f"{exchange}: {result.symbols} symbols, a trade in {result.trade_s:.1f} s")
        return "; ".join(seen)

    def _endpoints(self, kind: str) -> list[Endpoint]:
        return [e for e in endpoints(self.settings, self.run) if e.kind == kind]

    def check_ingest(self) -> str:
        found = self._endpoints("ingest")
        if not found:
            raise Broken("no ingest is configured or recorded", _START)
        seen = []
        for endpoint in found:
            first = scrape(endpoint.url)
            if first is None:
                raise Broken(
                    f"{endpoint.name} does not answer at {endpoint.url}",
                    f"{_START}, or `k2 ingest --exchange {endpoint.name.removeprefix('ingest-')}`",
                )
            self.scrapes[endpoint.name] = first
            if (first.total("k2_ingest_connected") or 0) < 1:
                raise Broken(f"{endpoint.name} is not connected to its exchange", "read its log")
            delivered = functools.partial(
                _counter, endpoint.url, "k2_ingest_trades_delivered_total"
            )
            before, after = watch_until_moved(delivered, self.trade_timeout_s)
            if after <= before:
                received = _counter(endpoint.url, "k2_ingest_trades_received_total")
                raise Broken(
                    f"{endpoint.name} delivered nothing for {self.trade_timeout_s:.0f} s "
                    f"(received {received or 0:.0f}, delivered {after:.0f})",
                    "read its log: Kafka refusing records, or the exchange sends no trades",
                )
            seen.append(f"{endpoint.name} +{after - before:.0f} delivered")
        return ", ".join(seen)

    def check_topics(self) -> str:
        def end_offsets() -> float | None:
            topics, _ = self._topic_figures(None)
            return float(sum(sum(t.end_offsets.values()) for t in topics))

        before, after = watch_until_moved(end_offsets, self.trade_timeout_s)
        if after <= before:
            raise Broken(
                f"raw topic end offsets stay at {before:.0f} while the ingests deliver",
                "the ingests write elsewhere: check K2_KAFKA__BOOTSTRAP_SERVERS and "
                "K2_KAFKA__TOPIC_PREFIX of every part",
            )
        return f"+{after - before:.0f} records"

    def check_stream(self) -> str:
        found = self._endpoints("stream")
        stream = found[0] if found else None
        first = scrape(stream.url) if stream is not None else None
        if stream is None or first is None:
            where = f" at {stream.url}" if stream is not None else ""
            raise Broken(
                f"the streaming job does not answer{where}", f"{_START}, or `k2 job stream`"
            )
        self.scrapes[stream.name] = first
        window = self.settings.alerts.commit_intervals * self.settings.stream.trigger_interval_s

        def settled() -> float | None:
            topics, _ = self._topic_figures(self.catalog)
            return float(sum(sum(t.settled.values()) for t in topics if t.settled))

        before, after = watch_until_moved(settled, window + 10)
        if after <= before:
            raise Broken(
                f"no micro-batch committed to Bronze for {window + 10:.0f} s while data arrives",
                "read the job's log (K2_HOME/logs/stream.log): a failing or stuck batch",
            )
        masters, apps = spark_cluster(self.settings.spark)
        job = next((a for a in apps if a.get("name") == "k2-stream"), None)
        if masters and (job is None or not job.get("cores")):
            raise Broken(
                f"the Spark master {self.settings.spark.master} runs no executor of k2-stream",
                "its workers have no free cores or memory: read the master's web UI",
            )
        topics, _ = self._topic_figures(self.catalog)
        lag = sum(t.lag or 0 for t in topics)
        if lag > self.settings.alerts.lag_records:
            raise Broken(
                f"the job is {lag} records behind (more than {self.settings.alerts.lag_records})",
                "give Spark more room (K2_SPARK__*) or raise K2_STREAM__MAX_OFFSETS_PER_TRIGGER",
            )
        return f"+{after - before:.0f} offsets settled, lag {lag}"

    def _topic_figures(self, catalog: Any) -> tuple[list[TopicFigures], int]:
        settings = self.settings
        return topic_figures(
            settings.kafka_config(),
            settings.exchanges,
            settings.kafka.topic_prefix,
            settings.lake.namespace_prefix,
            catalog,
        )

    def check_freshness(self) -> str:
        limit = self.settings.alerts.freshness_s
        now = datetime.now(UTC)
        seen = []
        for identifier in self._layer_tables():
            if not self.catalog.table_exists(identifier):
                raise Broken(f"{identifier} does not exist", "read the streaming job's log")
            figures = table_figures(self.catalog, identifier, now)
            age = figures.freshness_s
            if age is None or age > limit:
                shown = "no rows" if age is None else f"newest row {age:.0f} s old"
                raise Broken(
                    f"{identifier}: {shown} (limit {limit:.0f} s, K2_ALERTS__FRESHNESS_S)",
                    "read the streaming job's log for the layer that stopped",
                )
            seen.append(f"{identifier} {age:.0f}s")
        return ", ".join(seen)

    def _layer_tables(self) -> list[str]:
        """The tables the streaming job writes trades to: Bronze, Silver, Gold."""
        plan = layout(self.settings)
        bronze = [plan.source(exchange).table for exchange in plan.exchanges]
        return [*bronze, *plan.silver.values(), plan.gold]

    def check_builds(self) -> str:
        installed = git_sha()
        for name, found in sorted(self.scrapes.items()):
            reason = stale_reason(dict(found.build()), installed)
            if reason is not None:
                running = found.build().get("git_sha")
                raise Broken(
                    f"{name} runs git sha {running}, the installed code is {installed}",
                    f"restart {name} so it runs the installed code",
                )
        return f"{len(self.scrapes)} services on {installed}"


def _counter(url: str, name: str) -> float | None:
    found = scrape(url)
    return found.total(name) if found is not None else None
