"""Server restarts under `acme pipeline run --follow`, while pgbench writes: analytics_db
stopped cleanly, crashed in the middle of dbt's build, and stopped while a batch was copied
but not committed; finance_db crashed (immediate shutdown) under the writers, and crashed
right after the loader landed the last batch, before the build. The follow loop logs one
clear line per retry, backs off, resumes by itself from the stored watermark, and at the
end nothing is lost or doubled. A dbt test that really fails is still reported, not retried
as if it were an outage.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import psycopg2
import pytest

from connections.settings import PROJECT_ROOT, parse_uri
from localpg import servers
from tests.pgbench.harness import (
    RESUMED_LINE,
    RETRY_LINE,
    BackgroundWorkload,
    Follower,
    LoaderPauses,
    assert_every_change_staged_once,
    seed_reference_data,
    sized,
    verify_passes,
    wait_until_drained,
)

ROUNDS = sized(1, 3)
LAST_ORDERS = """
insert into operations.orders (customer_id, order_date, delivery_date, status)
select n, '2026-03-01', '2026-03-05', 'PENDING' from generate_series(1, 5) as n
"""


@pytest.fixture
def servers_left_running(local_servers):
    """Whatever happens in the test, the session's servers run again after it."""
    ports = {server.key: servers.status_of(server).port for server in servers.SERVERS}
    yield
    for server in servers.SERVERS:
        if not servers.status_of(server).running:
            servers.start(server, ports[server.key])


def dbt_is_building(platform) -> bool:
    try:
        return platform.analytics(
            "select count(*) > 0 from pg_stat_activity "
            "where application_name ilike '%%dbt%%' and state = 'active'",
            fetch=True,
        )[0][0]
    except psycopg2.OperationalError:
        return False


def retry_lines(follower: Follower, since: float, database: str, expect: str = "") -> list:
    return [
        line
        for line in follower.own_lines(since)
        if RETRY_LINE.match(line) and database in line and expect in line
    ]


def restart(server: servers.LocalServer, mode: str, down_seconds: float) -> None:
    """Stops one running server (`immediate`: a crash to its clients), keeps it down for a
    while, and starts it on the same port."""
    port = servers.status_of(server).port
    assert port is not None, f"{server.database} is not running"
    servers.stop(server, mode)
    time.sleep(down_seconds)
    servers.start(server, port)


def resumed(follower: Follower, since: float) -> bool:
    return any(RESUMED_LINE.match(line) for line in follower.own_lines(since))


def restart_and_wait_for_recovery(follower: Follower, restart_server, database: str, expect=""):
    """Restarts a server; then the follow loop must log a retry naming the database (and
    `expect`), resume by itself, and finish a cycle that loads and builds new changes."""
    began = time.monotonic()
    restart_server()
    follower.wait_for(
        lambda: retry_lines(follower, began, database, expect),
        60,
        f"a retry line naming {database} ({expect!r})",
    )
    follower.wait_for(lambda: resumed(follower, began), 120, "the follow loop to resume")
    follower.wait_for_cycles(1, since=began, loaded=True, built=True, timeout=120)
    return [line for line in follower.own_lines(began) if RETRY_LINE.match(line)]


def restart_analytics_and_release(pauses: LoaderPauses) -> None:
    restart(servers.ANALYTICS_SERVER, "fast", 1.0)
    pauses.reconnect()
    pauses.pause(None)


def finance_port(platform) -> int:
    return parse_uri(platform.finance_uri, "finance").port


def load_once() -> None:
    """The loader alone (no dbt): lands what is there and creates the staging tables."""
    load = subprocess.run(
        [sys.executable, "-c", "from loader.copy_changes import load_changes; load_changes()"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert load.returncode == 0, load.stderr


def test_follow_rides_out_restarts_of_both_databases(platform, servers_left_running):
    seed_reference_data(platform)
    load_once()
    pauses = LoaderPauses(platform.analytics_uri).install()
    follower = Follower.start()
    retries: list[str] = []
    restarts = 0
    try:
        with BackgroundWorkload(platform, clients=4, rate=100, seed=11) as workload:
            follower.wait_for_cycles(1, since=0, loaded=True, built=True, timeout=120)
            for _round in range(ROUNDS):
                # analytics_db, stopped cleanly, whatever the cycle is doing.
                retries += restart_and_wait_for_recovery(
                    follower,
                    lambda: restart(servers.ANALYTICS_SERVER, "fast", 2.0),
                    "analytics_db",
                )
                # analytics_db crashing in the middle of dbt's build: dbt reports a failed
                # build, not psycopg2's errors, and that must be retried too.
                follower.wait_for(lambda: dbt_is_building(platform), 120, "dbt to build")
                retries += restart_and_wait_for_recovery(
                    follower,
                    lambda: restart(servers.ANALYTICS_SERVER, "immediate", 1.0),
                    "analytics_db",
                    "dbt build stopped",
                )
                # finance_db crashing under the writers and the loader.
                retries += restart_and_wait_for_recovery(
                    follower,
                    lambda: restart(servers.FINANCE_SERVER, "immediate", 2.0),
                    "finance_db",
                )
                # analytics_db stopping while a batch is copied but not committed: the
                # loader loses its connection mid-transaction.
                pauses.reconnect()
                pauses.pause("commit")
                follower.wait_for(lambda: pauses.holds("commit"), 120, "a batch held open")
                retries += restart_and_wait_for_recovery(
                    follower,
                    lambda: restart_analytics_and_release(pauses),
                    "analytics_db",
                    "lost a database connection",
                )
                restarts += 4
        assert workload.processed > 0
        # The writers have stopped. A last batch lands, then finance_db crashes before the
        # cycle can build it: nothing new comes after, so only a build owed for it makes
        # the warehouse current.
        platform.finance(LAST_ORDERS)
        pauses.pause("commit")
        follower.wait_for(lambda: pauses.holds("commit"), 120, "the last batch held open")
        began = time.monotonic()
        servers.stop(servers.FINANCE_SERVER, "immediate")
        pauses.pause(None)
        follower.wait_for(
            lambda: retry_lines(follower, began, "finance_db"), 60, "a retry naming finance_db"
        )
        servers.start(servers.FINANCE_SERVER, finance_port(platform))
        follower.wait_for(lambda: resumed(follower, began), 120, "the follow loop to resume")
        retries += retry_lines(follower, began, "finance_db")
        restarts += 1
        wait_until_drained(platform, follower)
    finally:
        output = follower.stop()
    pauses.remove()
    assert follower.process.returncode == 0, output[-3000:]
    assert "stopped cleanly after" in output and "Traceback" not in output
    # Each retry is one line: when, what is down and why, and when the next attempt is.
    for line in retries:
        assert "\n" not in line and len(line) < 400, line
        assert re.match(r"^\d\d:\d\d:\d\d .*(finance_db|analytics_db).*; retrying in \d+s$", line)
    report = verify_passes(platform)
    staged = assert_every_change_staged_once(platform)
    print(
        f"{restarts} restarts survived with {len(retries)} retries; {workload.processed} "
        f"pgbench transactions ({workload.failed_runs} runs cut short by finance_db's "
        f"restarts); {staged} changes staged exactly once; {report['rows_verified']} rows "
        "verified"
    )
    print("\n".join(retries))


def test_a_failing_dbt_test_is_reported_not_retried(platform):
    seed_reference_data(platform)
    platform.finance(
        "insert into operations.orders (customer_id, order_date, delivery_date, status) "
        "select 1, '2026-01-01', '2026-01-02', 'PENDING' from generate_series(1, 3)"
    )
    load_once()
    # A staged order without its customer: the marts' not_null test on customer_id fails
    # with analytics_db up all along.
    platform.analytics(
        "update staging.change_log set new_row = new_row - 'customer_id' "
        "where change_id = (select max(change_id) from staging.change_log "
        "where table_name = 'orders')"
    )
    follower = Follower.start()
    follower.process.wait(timeout=180)
    output = follower.stop()
    assert follower.process.returncode == 1, output[-3000:]
    assert "Error: dbt build failed (not_null_fact_orders_customer_id" in output, output[-3000:]
    assert "retrying in" not in output
