"""The benchmark's own servers, and the database pairs the figures run in.

The servers are the ones `acme local up` runs (same binaries and settings), started on free
ports under a temporary ACME_HOME, so a benchmark never touches the demo's data. Each figure
works in its own pair of databases (finance_<name> on the finance server, analytics_<name> on
the analytics server), so datasets of different sizes can stand side by side and be measured
interleaved. The platform is pointed at a pair through ACME_FINANCE_DSN / ACME_ANALYTICS_DSN.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from localpg import servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    home: Path
    finance_uri: str
    analytics_uri: str

    def server_uri(self, uri: str, database: str) -> str:
        return uri.rsplit("/", 1)[0] + "/" + database

    def pair(self, name: str, fresh: bool = True) -> Pair:
        pair = Pair(
            name,
            self.server_uri(self.finance_uri, f"finance_{name}"),
            self.server_uri(self.analytics_uri, f"analytics_{name}"),
        )
        for uri in (pair.finance_uri, pair.analytics_uri):
            create_database(uri, fresh)
        return pair

    def drop_pair(self, name: str, *others: str) -> None:
        """Frees the disk a finished figure's databases hold."""
        for uri in (self.finance_uri, self.analytics_uri):
            for database in (f"finance_{name}", f"analytics_{name}", *others):
                drop_database(self.server_uri(uri, database))

    def server_version(self) -> str:
        return run_sql(self.finance_uri, "show server_version", fetch=True)[0][0]


@dataclass
class Pair:
    name: str
    finance_uri: str
    analytics_uri: str

    def environment(self) -> dict[str, str]:
        return {"ACME_FINANCE_DSN": self.finance_uri, "ACME_ANALYTICS_DSN": self.analytics_uri}

    @contextmanager
    def active(self) -> Iterator[Pair]:
        """The platform's in-process calls act on this pair while inside."""
        saved = {key: os.environ.get(key) for key in self.environment()}
        os.environ.update(self.environment())
        try:
            yield self
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def finance(self, sql: str, params=None, fetch: bool = False):
        return run_sql(self.finance_uri, sql, params, fetch)

    def analytics(self, sql: str, params=None, fetch: bool = False):
        return run_sql(self.analytics_uri, sql, params, fetch)


def run_sql(uri: str, sql: str, params=None, fetch: bool = False, autocommit: bool = False):
    """One statement on its own connection; autocommit for those that cannot run in a
    transaction block (CREATE DATABASE, CREATE and DROP SUBSCRIPTION)."""
    conn = psycopg2.connect(uri)
    conn.autocommit = autocommit
    try:
        # Not `with conn`: since psycopg2 2.9 it opens a transaction even in autocommit.
        with conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall() if fetch else None
        conn.commit()  # closing without it rolls back a failed statement's transaction
        return rows
    finally:
        conn.close()


def drop_database(uri: str) -> None:
    base, database = uri.rsplit("/", 1)
    run_sql(
        base + "/postgres", f'drop database if exists "{database}" with (force)', autocommit=True
    )


def create_database(uri: str, fresh: bool) -> None:
    base, database = uri.rsplit("/", 1)
    if fresh:
        drop_database(uri)
    exists = run_sql(
        base + "/postgres", "select 1 from pg_database where datname = %s", (database,), fetch=True
    )
    if not exists:
        run_sql(base + "/postgres", f'create database "{database}"', autocommit=True)


@contextmanager
def bench_cluster(progress) -> Iterator[Cluster]:
    """Both servers, started for the run and removed after it."""
    home = Path(tempfile.mkdtemp(prefix="acme-bench-"))
    os.chmod(home, 0o755)  # the servers may run as another OS user (localpg/os_user.py)
    saved = {key: os.environ.get(key) for key in ("ACME_HOME", "ACME_EXPORT_DIR")}
    os.environ["ACME_HOME"] = str(home)
    os.environ["ACME_EXPORT_DIR"] = str(home / "exports")
    for key in ("ACME_FINANCE_DSN", "ACME_ANALYTICS_DSN"):
        os.environ.pop(key, None)
    try:
        uris = servers.up({"finance": free_port(), "analytics": free_port()}, progress=progress)
        yield Cluster(home, uris["finance"], uris["analytics"])
    finally:
        servers.down(progress=lambda _message: None)
        shutil.rmtree(home, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
