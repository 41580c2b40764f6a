"""Every test that touches data runs against two real PostgreSQL servers, started here by the
same code as `acme local up`, on free ports under a temporary ACME_HOME."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from connections.settings import PROJECT_ROOT
from loader import capture
from localpg import os_user, servers
from pipeline.cycle import CycleResult, run_cycle
from workload.schema import create_source_schema

ACME = [sys.executable, "-m", "cli"]

# tests/compose/ runs the docker-compose deployment under podman (about 2 minutes, as root):
# `make compose-test` runs it, and `make test`, which has no room for it, does not collect it.
collect_ignore = [] if os.environ.get("ACME_COMPOSE_TEST") else ["compose"]


def pytest_configure(config):
    """The servers' OS user (when running as root), created once before any test worker
    starts: workers creating it at the same moment could each give it a uid of their own."""
    if not hasattr(config, "workerinput"):
        os_user.server_user()


# Modules whose tests take 20-60 s each (--follow, restarts, the quick benchmarks). Run first,
# so that the suite ends on short tests on every worker rather than one worker finishing a
# long test alone while the other waits.
LONG_MODULES = (
    "test_bench_quick.py",
    "test_never_silently_wrong.py",
    "test_restarts.py",
    "test_dbt_by_hand.py",
    "test_prometheus.py",
    "test_restore.py",
    "test_crash.py",
)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name not in LONG_MODULES)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def local_servers(tmp_path_factory):
    home = tmp_path_factory.mktemp("acme-home")
    os.environ["ACME_HOME"] = str(home)
    os.environ["ACME_EXPORT_DIR"] = str(tmp_path_factory.mktemp("exports"))
    for name in ("ACME_FINANCE_DSN", "ACME_ANALYTICS_DSN"):
        os.environ.pop(name, None)
    uris = servers.up(
        {"finance": free_port(), "analytics": free_port()}, progress=lambda _message: None
    )
    yield uris
    servers.down(progress=lambda _message: None)


class Platform:
    """The two databases of one test, and the `acme` command run as a user would."""

    def __init__(self, uris: dict[str, str]):
        self.finance_uri = uris["finance"]
        self.analytics_uri = uris["analytics"]

    def finance(self, sql: str, params=None, fetch: bool = False):
        return run_sql(self.finance_uri, sql, params, fetch)

    def analytics(self, sql: str, params=None, fetch: bool = False):
        return run_sql(self.analytics_uri, sql, params, fetch)

    def finance_connection(self):
        return psycopg2.connect(self.finance_uri)

    def acme(self, *args: str, check: bool = True, env: dict | None = None, timeout=600):
        result = subprocess.run(
            [*ACME, *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"acme {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def pipeline_run(self) -> CycleResult:
        """What `acme pipeline run` does, in this process: for the steps that bring a test to
        what it tests. Each command pays an interpreter and dbt's import and parse (about 3 s);
        the tests of the command itself run it."""
        return run_cycle(build_when_idle=False)

    def export(self, report: str, path: Path, *extra: str) -> str:
        self.acme(report, "--output", str(path), *extra)
        return path.read_bytes().decode()  # as written: read_text() would turn \r\n into \n


def run_sql(uri: str, sql: str, params=None, fetch: bool = False):
    conn = psycopg2.connect(uri)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if fetch else None
    finally:
        conn.close()


@pytest.fixture
def platform(local_servers) -> Platform:
    """Empty databases with the operations schema and capture installed."""
    plat = Platform(local_servers)
    plat.finance("drop schema if exists operations cascade; drop schema if exists cdc cascade")
    plat.analytics(
        "drop schema if exists staging cascade; drop schema if exists analytics cascade; "
        "drop schema if exists reports cascade"
    )
    # In this process, as `acme db init` and `acme capture install` do it: their CLI is tested
    # elsewhere, and two interpreter starts per test add up.
    create_source_schema()
    capture.install()
    return plat
