"""The deployment as a Docker user runs it: `docker-compose up` with the project's own
docker-compose.yml and Dockerfile, here on podman and on stand-in base images built from
Debian's packages (deploy/offline/build-images.sh), as no registry is reachable.

`make compose-test` runs this module (about 2 minutes); `make test` does not collect it
(tests/conftest.py). Needs root, for podman's networks and for mmdebstrap.

The tests run in file order on one stack: up, write, export, restart, down. Every published
port is on 127.0.0.1; the containers talk over the network compose creates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from localpg import os_user
from tests.compose.stack import (
    POSTGRES_IMAGE,
    PYTHON_IMAGE,
    SERVICES,
    PodmanStack,
    missing_tools,
)
from tests.conftest import free_port, run_sql
from tests.oracle import expected_csv
from tests.test_pipeline import wait_for

PROJECT = "acmecompose"
FINANCE_PASSWORD = "compose-finance-pw"
ANALYTICS_PASSWORD = "compose-analytics-pw"
REPORTS = ("open_orders", "top_delivery_dates", "pending_items", "top_customers")


@dataclass
class Deployment:
    podman: PodmanStack
    finance_uri: str
    exports: Path
    uid: int


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the compose test runs podman as root: run `sudo make compose-test`")
    missing = missing_tools()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `make compose-test`, which installs them")
    root = tmp_path_factory.mktemp("podman")
    exports = tmp_path_factory.mktemp("data-exports")
    # The pipeline runs as ACME_UID and writes exports into the bind-mounted folder; as root,
    # an unprivileged uid of this machine's.
    uid = os_user.server_user().pw_uid
    os.chown(exports, uid, -1)
    finance_port, analytics_port, metrics_port = free_port(), free_port(), free_port()
    env_file = root / "compose.env"
    env_file.write_text(
        f"FINANCE_DB_PASSWORD={FINANCE_PASSWORD}\n"
        f"ANALYTICS_DB_PASSWORD={ANALYTICS_PASSWORD}\n"
        f"ACME_UID={uid}\n"
        f"POSTGRES_IMAGE={POSTGRES_IMAGE}\n"
        f"PYTHON_IMAGE={PYTHON_IMAGE}\n"
        f"TRANSACTIONS_DB_PUBLISH=127.0.0.1:{finance_port}\n"
        f"ANALYTICAL_DB_PUBLISH=127.0.0.1:{analytics_port}\n"
        f"METRICS_PUBLISH=127.0.0.1:{metrics_port}\n"
        f"ACME_EXPORTS_DIR={exports}\n"
    )
    podman = PodmanStack(root, PROJECT, env_file)
    try:
        podman.start_service()
        podman.build_images()
        podman.run_healthchecks()
        yield Deployment(
            podman,
            f"postgresql://finance_db_user:{FINANCE_PASSWORD}@127.0.0.1:{finance_port}/finance_db",
            exports,
            uid,
        )
    finally:
        podman.close()
        shutil.rmtree(root, ignore_errors=True)


def simulate(stack: Deployment, orders: int, seed: int, *options: str) -> subprocess.Popen:
    """The project's workload, written from the host through transactions-db's published
    port."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "simulate",
            "--orders",
            str(orders),
            "--concurrency",
            "2",
            "--seed",
            str(seed),
            *options,
        ],
        env={**os.environ, "ACME_FINANCE_DSN": stack.finance_uri},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output


def newest_change(stack: Deployment) -> int:
    return run_sql(
        stack.finance_uri, "select coalesce(max(change_id), 0) from cdc.change_log", fetch=True
    )[0][0]


def pipeline_status(stack: Deployment) -> dict:
    return json.loads(
        stack.podman.exec("data-pipeline", "acme", "pipeline", "status", "--json").stdout
    )


def drained(stack: Deployment) -> bool:
    """The reports reflect the newest change in the source's log, and `acme verify` passes
    inside data-pipeline (every captured table equals its warehouse table). Verify alone
    would not do: it reads the current-state marts, not what the reports read."""
    reflects = pipeline_status(stack)["reports_reflect"]
    if reflects is None or reflects["change_id"] != newest_change(stack):
        return False
    return stack.podman.exec("data-pipeline", "acme", "verify", check=False).returncode == 0


def assert_staged_exactly_once(stack: Deployment) -> None:
    """Every row of the source's change log is staged, once: staging's count of changes and
    its watermark equal the log's."""
    status = pipeline_status(stack)
    [(logged, newest)] = run_sql(
        stack.finance_uri, "select count(*), max(change_id) from cdc.change_log", fetch=True
    )
    assert (status["changes_staged"], status["watermark_change_id"]) == (logged, newest)
    assert status["lag_changes"] == 0
    assert status["commit_times_tracked"] is True


def assert_exports_match_the_source(stack: Deployment) -> None:
    for report in REPORTS:
        target = stack.exports / f"{report}.csv"
        target.unlink(missing_ok=True)
        stack.podman.exec("data-pipeline", "acme", report, "--output", f"{report}.csv")
        assert target.stat().st_uid == stack.uid
        # as written: read_text() would turn \r\n into \n
        assert target.read_bytes().decode() == expected_csv(stack.finance_uri, report), report


def test_up_builds_the_image_and_both_healthchecks_pass(stack):
    stack.podman.compose("up", "--detach", "--build", timeout=900)
    for service in SERVICES:
        wait_for(lambda s=service: stack.podman.health(s) == "healthy", 240, f"{service} healthy")
    assert sorted(stack.podman.running()) == sorted(SERVICES)


def test_the_seeds_commands_answer(stack):
    finance = stack.podman.exec(
        "transactions-db", "pg_isready", "-U", "finance_db_user", "-d", "finance_db"
    )
    assert "accepting connections" in finance.stdout
    analytics = stack.podman.exec(
        "analytical-db", "pg_isready", "-U", "analytics_user", "-d", "analytics_db"
    )
    assert "accepting connections" in analytics.stdout
    status = stack.podman.exec("data-pipeline", "acme", "pipeline", "status")
    assert "watermark: txid" in status.stdout and "freshness: pass" in status.stdout, status.stdout


def test_orders_written_through_the_published_port_reach_the_csvs(stack):
    finished(simulate(stack, orders=300, seed=7))
    wait_for(lambda: drained(stack), 180, "the pipeline to drain")
    assert_staged_exactly_once(stack)
    assert_exports_match_the_source(stack)


def test_a_restart_of_the_pipeline_during_writes_resumes_without_loss(stack):
    # Few customers and products, so orders start committing at once; 20 s of them.
    writer = simulate(
        stack, 1_000_000, 8, "--customers", "50", "--products", "20", "--duration", "20"
    )
    try:
        written = newest_change(stack)
        wait_for(lambda: newest_change(stack) > written, 60, "the workload's first commits")
        stack.podman.compose("stop", "data-pipeline", timeout=120)
        assert "data-pipeline" not in stack.podman.running()
        stopped_at = newest_change(stack)
        wait_for(
            lambda: newest_change(stack) > stopped_at, 60, "commits while the pipeline is stopped"
        )
        stack.podman.compose("start", "data-pipeline", timeout=120)
        assert writer.poll() is None, "the workload ended before the pipeline was back"
        finished(writer)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.communicate()
    wait_for(lambda: drained(stack), 180, "the pipeline to drain")
    assert_staged_exactly_once(stack)
    assert_exports_match_the_source(stack)


def test_down_leaves_nothing_running(stack):
    stack.podman.compose("down", "--volumes", timeout=180)
    assert stack.podman.podman("ps", "--all", "--format", "{{.Names}}").stdout.split() == []
    volumes = stack.podman.podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
    assert [volume for volume in volumes if volume.startswith(PROJECT)] == []
    networks = stack.podman.podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert [network for network in networks if network.startswith(PROJECT)] == []
