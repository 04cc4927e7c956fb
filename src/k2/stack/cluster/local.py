"""A multi-server cluster on this machine: the right-hand column of K2's design, from real
servers on the loopback address.

Three Kafka KRaft nodes (one quorum), the schema registry, PostgreSQL, an S3 object store, the
Iceberg REST catalog server, a Spark standalone master and its workers. K2 moves onto it by
configuration only: :meth:`LocalCluster.environment` is every setting that changes.

Its state lives in ``<state>/cluster/``; ``cluster.json`` keeps the ports and the generated
credentials, so the addresses stay the same from one ``up`` to the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import psutil

from k2.config import StackSettings
from k2.errors import ConfigError
from k2.stack.cluster.environment import (
    CatalogKind,
    ClusterAddresses,
    k2_environment,
    write_env_file,
)
from k2.stack.cluster.object_store import BUCKET, PORT_FLAGS, ObjectStore, S3Access
from k2.stack.cluster.postgres import ROLE, PostgresAccess, PostgresServer
from k2.stack.cluster.rest_catalog import RestCatalogServer
from k2.stack.cluster.spark import SparkMaster, SparkWorker
from k2.stack.cluster.state import ClusterState
from k2.stack.kafka import KafkaBroker, KafkaLayout, KafkaNode
from k2.stack.manager import Service, ServiceStatus, service_statuses
from k2.stack.ports import ensure_port_free
from k2.stack.registry import SchemaRegistry

BROKER_HEAP = "384m"
REGISTRY_HEAP = "384m"
JDBC_DATABASE = "iceberg"
# Servers whose connections to another do not survive its restart: `up` restarts them with it.
_RUNS_ON: dict[str, tuple[str, ...]] = {"rest-catalog": ("postgres",)}


class LocalCluster:
    """Start, stop and inspect the local cluster of ``stack``'s state folder."""

    def __init__(
        self,
        stack: StackSettings,
        workers: int = 2,
        brokers: int = 3,
        worker_cores: int = 1,
        worker_memory: str = "2g",
    ) -> None:
        if brokers < 1 or workers < 1:
            raise ConfigError("a local cluster needs at least one broker and one Spark worker")
        self.stack = stack
        self.dir = stack.state_dir / "cluster"
        self.state = ClusterState.load(self.dir / "cluster.json")
        if self.state.brokers not in (None, brokers):
            raise ConfigError(
                f"the local cluster in {self.dir} has {self.state.brokers} Kafka brokers, not "
                f"{brokers}; ask for {self.state.brokers}, or move {self.dir} away for a new one"
            )
        self.state.brokers = brokers
        self.brokers = self._brokers(brokers)
        self.registry = self._registry()
        self.postgres = self._postgres()
        self.object_store = self._object_store()
        self.rest_catalog = self._rest_catalog()
        self.spark_master = self._spark_master(workers)
        self.workers = [
            self._worker(index, (worker_cores, worker_memory)) for index in range(1, workers + 1)
        ]
        self.services: list[Service] = [
            *self.brokers,
            self.registry,
            self.postgres,
            self.object_store,
            self.rest_catalog,
            self.spark_master,
            *self.workers,
        ]

    @property
    def exists(self) -> bool:
        """True once an ``up`` has saved the cluster's ports and credentials."""
        return self.state.exists

    @property
    def env_file(self) -> Path:
        return self.dir / "env"

    def service(self, name: str) -> Service:
        """The server called ``name`` (``kafka-2``, ``postgres``, ``spark-worker-1``, ...)."""
        for service in self.services:
            if service.name == name:
                return service
        known = ", ".join(service.name for service in self.services)
        raise KeyError(f"no server {name!r} in the local cluster (it has {known})")

    def up(self) -> list[tuple[str, bool]]:
        """Start every server that is down, in dependency order, each healthy before the next.
        Returns (name, started_now) per server.

        When one fails to start, those this call started are stopped again before the error
        propagates.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state.save()
        self._check_ports_free()
        results: list[tuple[str, bool]] = []
        try:
            for tier in self._tiers():
                self._restart_stale(tier, {name for name, started in results if started})
                self._start_tier(tier, results)
        except BaseException:
            self.stop_services([name for name, started in results if started])
            raise
        return results

    def down(self) -> list[tuple[str, bool]]:
        """Stop every server, those that depend on others first; data stays in the cluster's
        folder."""
        return self.stop_services([service.name for service in self.services])

    def stop_services(self, names: list[str]) -> list[tuple[str, bool]]:
        """Stop the servers called ``names`` (and only those), in the reverse of the start
        order. Servers that do not depend on each other stop together: the brokers must (the
        last voters of a quorum cannot stop in order once the others are gone), and the
        others need not wait for each other's graceful stop."""
        wanted = set(names)
        results: list[tuple[str, bool]] = []
        for tier in reversed(self._tiers()):
            chosen = [service for service in tier if service.name in wanted]
            if not chosen:
                continue
            with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
                stopped = list(pool.map(lambda service: service.stop(), chosen))
            results += [(service.name, done) for service, done in zip(chosen, stopped, strict=True)]
        return results

    def status(self) -> list[ServiceStatus]:
        return service_statuses(self.services)

    def addresses(self) -> ClusterAddresses:
        """Where each part answers, with the credentials K2 uses."""
        postgres, s3 = self.postgres.access, self.object_store.access
        return ClusterAddresses(
            bootstrap_servers=",".join(broker.address for broker in self.brokers),
            replication_factor=self.brokers[0].layout.replication,
            registry_url=self.registry.address,
            jdbc_url=postgres.jdbc_url(JDBC_DATABASE),
            jdbc_user=ROLE,
            jdbc_password=postgres.password,
            rest_url=self.rest_catalog.address,
            s3_endpoint=s3.endpoint,
            s3_region=s3.region,
            s3_access_key=s3.access_key,
            s3_secret_key=s3.secret_key,
            bucket=BUCKET,
            spark_master=self.spark_master.address,
            spark_master_ui=self.spark_master.ui_url,
        )

    def environment(self, catalog: CatalogKind = "jdbc") -> dict[str, str]:
        """The K2 settings that point K2 at this cluster (secrets included)."""
        return k2_environment(self.addresses(), catalog)

    def write_env_file(self, catalog: CatalogKind = "jdbc") -> Path:
        """``<cluster>/env``: :meth:`environment` as ``export`` lines, private to the owner."""
        header = f"K2 on the local cluster in {self.dir} ({catalog} catalog): source this file"
        self.dir.mkdir(parents=True, exist_ok=True)
        return write_env_file(self.env_file, self.environment(catalog), header)

    def _tiers(self) -> list[list[Service]]:
        """The servers in start order (dependencies first), grouped so that none depends on
        another of its group."""
        return [
            [*self.brokers],
            [self.registry, self.postgres, self.object_store],
            [self.rest_catalog],
            [self.spark_master],
            [*self.workers],
        ]

    def _check_ports_free(self) -> None:
        """Fail before starting anything when a port of a server that is down is held by
        another program (each server checks again as it starts)."""
        down = {service.name for service in self.services if service.process.info() is None}
        for key, port in self.state.ports.items():
            owner = next((name for name in down if key == name or key.startswith(f"{name}-")), None)
            if owner is not None:
                ensure_port_free(self.stack.host, port, key, self.state.port_setting(key))

    def _restart_stale(self, tier: list[Service], started_now: set[str]) -> None:
        """Stop the servers of ``tier`` that run on a server restarted just now, so the tier
        starts them again. The REST catalog holds pooled connections to PostgreSQL, and its
        pool renews a connection only on the SQL states it deems retryable, which do not
        include PostgreSQL's 57P01 (terminating connection due to administrator command):
        after a PostgreSQL restart each pooled connection would fail one request with a 500.
        """
        for service in tier:
            stale = started_now.intersection(_RUNS_ON.get(service.name, ()))
            if stale and service.process.info() is not None:
                service.stop()

    @staticmethod
    def _start_tier(tier: list[Service], results: list[tuple[str, bool]]) -> None:
        """Start the servers of one tier together, each until it is healthy (the voters of a
        quorum must: one serves only once a majority of them runs). Every server that started
        is added to ``results`` before the first failure is raised."""
        with ThreadPoolExecutor(max_workers=len(tier)) as pool:
            futures = [pool.submit(service.start) for service in tier]
        failures = []
        for service, future in zip(tier, futures, strict=True):
            failure = future.exception()
            if failure is None:
                results.append((service.name, future.result()))
            else:
                failures.append(failure)
        if failures:
            raise failures[0]

    def _brokers(self, count: int) -> list[KafkaBroker]:
        nodes = tuple(
            KafkaNode(
                node_id=index,
                port=self.state.port(f"kafka-{index}"),
                controller_port=self.state.port(f"kafka-{index}-controller"),
            )
            for index in range(1, count + 1)
        )
        return [
            KafkaBroker(
                self.stack,
                KafkaLayout(
                    name=f"kafka-{node.node_id}",
                    home=self.dir,
                    dir=self.dir / f"kafka-{node.node_id}",
                    node=node,
                    voters=nodes,
                    heap=BROKER_HEAP,
                    cluster_id=self.state.kafka_cluster_id,
                    port_setting=self.state.port_setting(f"kafka-{node.node_id}"),
                    controller_port_setting=self.state.port_setting(
                        f"kafka-{node.node_id}-controller"
                    ),
                ),
            )
            for node in nodes
        ]

    def _registry(self) -> SchemaRegistry:
        # The registry keeps its state in <home>/registry: the cluster's folder is its home.
        settings = StackSettings.model_validate(
            {
                **self.stack.model_dump(),
                "home": self.dir,
                "registry_port": self.state.port("registry"),
                "registry_management_port": self.state.port("registry-management"),
                "registry_heap": REGISTRY_HEAP,
            }
        )
        return SchemaRegistry(
            settings,
            port_setting=self.state.port_setting("registry"),
            management_port_setting=self.state.port_setting("registry-management"),
        )

    def _postgres(self) -> PostgresServer:
        access = PostgresAccess(
            host=self.stack.host,
            port=self.state.port("postgres"),
            superuser_password=self.state.password("postgres-superuser"),
            password=self.state.password("postgres-k2"),
        )
        return PostgresServer(
            self.stack, self.dir / "postgres", access, self.state.port_setting("postgres")
        )

    def _object_store(self) -> ObjectStore:
        ports = {role: self.state.port(f"s3-{role}") for role in PORT_FLAGS}
        access = S3Access(
            host=self.stack.host,
            port=ports["s3"],
            access_key=self.state.access_key("s3-access-key"),
            secret_key=self.state.password("s3-secret-key"),
        )
        hint = self.state.port_setting("s3-<role>")
        return ObjectStore(self.stack, self.dir / "s3", ports, access, hint)

    def _rest_catalog(self) -> RestCatalogServer:
        return RestCatalogServer(
            self.stack,
            self.dir / "rest-catalog",
            self.dir,
            self.state.port("rest-catalog"),
            self.postgres.access,
            self.object_store.access,
            f"s3://{BUCKET}/rest-warehouse",
            self.state.port_setting("rest-catalog"),
        )

    def _spark_master(self, workers: int) -> SparkMaster:
        return SparkMaster(
            self.stack,
            self.dir / "spark-master",
            self.dir,
            self.state.port("spark-master"),
            self.state.port("spark-master-ui"),
            workers,
            self.state.port_setting("spark-master"),
        )

    def _worker(self, index: int, resources: tuple[int, str]) -> SparkWorker:
        name = f"spark-worker-{index}"
        return SparkWorker(
            self.stack,
            self.dir / name,
            self.dir,
            (self.state.port(name), self.state.port(f"{name}-ui")),
            self.spark_master,
            resources,
            self.state.port_setting(name),
        )


def cluster_processes(state_dir: Path) -> Iterator[int]:
    """Pids of every process of the local cluster in ``state_dir`` (by its marks: an argument
    or a working folder inside the cluster's folder), for a check that nothing is left."""
    folder = str(state_dir / "cluster")
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            args = cast("list[str]", proc.info["cmdline"] or [])
            cwd = cast("str | None", proc.info["cwd"]) or ""
        except psutil.Error:
            continue
        if any(folder in arg for arg in args) or cwd == folder or cwd.startswith(folder + "/"):
            yield proc.pid
