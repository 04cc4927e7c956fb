"""The cluster's PostgreSQL server: the database of the JDBC catalog and of the REST catalog.

Debian's ``postgresql`` package provides the programs (the newest version under
``/usr/lib/postgresql/<version>/bin``). PostgreSQL refuses to run as root, so when K2 runs as
root the server runs as the package's ``postgres`` account, which then owns the data folder and
must be able to enter every folder above it. It listens on one loopback address and port, keeps
its Unix sockets in its data folder, and asks every client for a password (SCRAM-SHA-256).
The role ``k2`` owns the databases ``iceberg`` and ``iceberg_rest``.
"""

from __future__ import annotations

import os
import pwd
import signal
import stat
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from k2.config import StackSettings
from k2.errors import FolderAccessError, ProgramMissingError, StackError
from k2.stack.cluster.state import write_private
from k2.stack.ports import ensure_port_free
from k2.stack.process import ManagedProcess

SERVER_ACCOUNT = "postgres"  # the account Debian's package creates
ROLE = "k2"
DATABASES = ("iceberg", "iceberg_rest")
_ROOT = Path("/usr/lib/postgresql")


@dataclass(frozen=True)
class PostgresAccess:
    """How the cluster reaches its PostgreSQL server: port, the superuser's password (for
    setting up roles) and the ``k2`` role's password."""

    host: str
    port: int
    superuser_password: str
    password: str

    def jdbc_url(self, database: str) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{database}"


def find_bin() -> Path:
    """The ``bin`` folder of the newest PostgreSQL installed, with ``initdb`` and ``postgres``."""
    found = []
    for folder in _ROOT.glob("*/bin") if _ROOT.is_dir() else ():
        version = folder.parent.name
        if version.isdigit() and (folder / "initdb").exists() and (folder / "postgres").exists():
            found.append((int(version), folder))
    if not found:
        raise ProgramMissingError(
            f"PostgreSQL server not found (no {_ROOT}/<version>/bin/initdb); install it with "
            "`apt-get install postgresql` (make sysdeps)"
        )
    return max(found)[1]


def server_account() -> str | None:
    """The OS account the server must run as: ``postgres`` when K2 runs as root, else None
    (the server runs as K2's own user)."""
    return SERVER_ACCOUNT if os.geteuid() == 0 else None


def check_traversable(folder: Path, account: str) -> None:
    """Raise unless ``account`` may enter ``folder`` and every folder above it."""
    entry = pwd.getpwnam(account)
    groups = set(os.getgrouplist(account, entry.pw_gid))
    for path in [folder, *folder.parents]:
        mode = path.stat()
        if mode.st_uid == entry.pw_uid:
            bit = stat.S_IXUSR
        elif mode.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not mode.st_mode & bit:
            raise FolderAccessError(
                f"PostgreSQL runs as the OS user {account}, which cannot enter {path}; let it "
                f"in with `chmod o+x {path}`, or set K2_HOME to a folder it can reach"
            )


class PostgresServer:
    """Start, stop and inspect the cluster's PostgreSQL server."""

    name = "postgres"

    def __init__(self, stack: StackSettings, dir: Path, access: PostgresAccess, setting: str):
        self.stack = stack
        self.dir = dir
        self.data_dir = dir / "data"
        self.access = access
        self.setting = setting
        # PostgreSQL takes no free-form flag: its socket folder, a path inside the state folder,
        # marks the process.
        self.process = ManagedProcess(
            "postgres",
            dir,
            marker=f"unix_socket_directories={self.data_dir}",
            stop_signal=signal.SIGINT,  # "fast" shutdown: SIGTERM would wait for every client
        )

    @property
    def address(self) -> str:
        return f"{self.access.host}:{self.access.port}"

    def version(self) -> str:
        try:
            return _server_version(find_bin())
        except ProgramMissingError:
            return "unknown"

    def unavailable(self) -> str | None:
        """Never skipped: both catalogs need it."""
        return None

    def connect(self, database: str = "postgres", *, superuser: bool = False) -> Any:
        """A new connection over TCP, as the ``k2`` role (or the superuser)."""
        import psycopg2

        return psycopg2.connect(
            host=self.access.host,
            port=self.access.port,
            dbname=database,
            user=SERVER_ACCOUNT if superuser else ROLE,
            password=self.access.superuser_password if superuser else self.access.password,
            connect_timeout=3,
        )

    def healthy(self) -> bool:
        import psycopg2

        try:
            with self.connect(superuser=True) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
            conn.close()
        except psycopg2.Error:
            return False
        return True

    def start(self) -> bool:
        """Start the server unless it runs already, set up the role and the databases. True
        if it was started now."""
        if self.process.info() is not None:
            return False
        bin_dir = find_bin()
        account = server_account()
        ensure_port_free(self.access.host, self.access.port, "PostgreSQL", self.setting)
        self._prepare_dir(account)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir, account)
        self.process.start(self._argv(bin_dir), cwd=self.dir, user=account)
        self.process.wait_until(self.healthy, self.stack.start_timeout_s, "healthy")
        self._provision()
        return True

    def stop(self) -> bool:
        return self.process.stop(self.stack.stop_timeout_s)

    def _argv(self, bin_dir: Path) -> list[str]:
        settings = {
            "listen_addresses": self.access.host,
            "port": str(self.access.port),
            "unix_socket_directories": str(self.data_dir),
            "unix_socket_permissions": "0700",
            "shared_buffers": "32MB",
            "max_connections": "100",
            "cluster_name": "k2-cluster",
        }
        argv = [str(bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _prepare_dir(self, account: str | None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if account is None:
            return
        check_traversable(self.dir.parent, account)
        entry = pwd.getpwnam(account)
        os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.dir.chmod(0o700)

    def _initdb(self, bin_dir: Path, account: str | None) -> None:
        """Create the data folder; the superuser's password goes through a private file."""
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise StackError(
                f"PostgreSQL data folder {self.data_dir} holds files but no PG_VERSION; move it "
                "away (its databases are lost) or restore it from a backup"
            )
        password_file = self.dir / ".superuser-password"
        write_private(password_file, self.access.superuser_password + "\n")
        if account is not None:
            entry = pwd.getpwnam(account)
            os.chown(password_file, entry.pw_uid, entry.pw_gid)
        argv = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            f"--username={SERVER_ACCOUNT}",
            f"--pwfile={password_file}",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ]
        try:
            self._run(argv, account)
        finally:
            password_file.unlink(missing_ok=True)

    def _run(self, argv: list[str], account: str | None) -> None:
        entry = None if account is None else pwd.getpwnam(account)
        with self.process.log_file.open("ab") as out:
            done = subprocess.run(
                argv,
                cwd=self.dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=180,
                check=False,
                user=None if entry is None else entry.pw_uid,
                group=None if entry is None else entry.pw_gid,
                extra_groups=None if entry is None else [],
            )
        if done.returncode != 0:
            raise StackError(
                f"initdb failed: {self.process.last_error_line()}; see {self.process.log_file}"
            )

    def _provision(self) -> None:
        """Create (or update the password of) the ``k2`` role and create its databases."""
        conn = self.connect(superuser=True)
        try:
            conn.autocommit = True  # CREATE DATABASE refuses to run in a transaction
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,))
                verb = "ALTER" if cur.fetchone() else "CREATE"
                cur.execute(f"{verb} ROLE {ROLE} LOGIN PASSWORD %s", (self.access.password,))
                cur.execute("SELECT datname FROM pg_database")
                present = {row[0] for row in cur.fetchall()}
                for database in DATABASES:
                    if database not in present:
                        cur.execute(f"CREATE DATABASE {database} OWNER {ROLE}")
        finally:
            conn.close()


@cache
def _server_version(bin_dir: Path) -> str:
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    # "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
    words = out.stdout.split()
    return words[2] if len(words) > 2 else "unknown"
