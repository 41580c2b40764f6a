"""`acme pipeline run --follow`, `acme pipeline status`, the local servers and the docs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg2
import pytest

from connections.locks import BUILD_LOCK_KEY
from connections.settings import PROJECT_ROOT
from pipeline.freshness import change_log_freshness, staged_log_freshness
from tests.conftest import ACME

ORDERS = """
insert into operations.customers (customer_name) values ('Acme Corp');
insert into operations.orders (customer_id, order_date, delivery_date, status)
select 1, '2026-01-01', '2026-01-02', 'PENDING' from generate_series(1, %s);
"""


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def warehouse_orders(platform) -> int:
    built = platform.analytics(
        "select to_regclass('analytics.fact_orders') is not null", fetch=True
    )[0][0]
    if not built:
        return 0
    return platform.analytics("select count(*) from analytics.fact_orders", fetch=True)[0][0]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_follow_keeps_the_warehouse_current_and_stops_cleanly(platform, stop_signal):
    platform.finance(ORDERS, (5,))
    follower = subprocess.Popen(
        [*ACME, "pipeline", "run", "--follow", "--interval", "0.5"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        wait_for(lambda: warehouse_orders(platform) == 5, 120, "the first 5 orders")
        platform.finance(ORDERS, (7,))
        wait_for(lambda: warehouse_orders(platform) == 12, 120, "7 more orders")
    finally:
        follower.send_signal(stop_signal)
        out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err
    assert f"received {stop_signal.name}: stopping after this cycle" in out
    assert "stopped cleanly after" in out
    assert "Traceback" not in err


def test_status_reports_lag_watermark_and_holder(platform):
    platform.finance(ORDERS, (3,))
    platform.acme("pipeline", "run")
    holder = platform.finance_connection()
    with holder.cursor() as cur:
        cur.execute("insert into operations.customers (customer_name) values ('held')")
        cur.execute("select pg_backend_pid()")
        holder_pid = cur.fetchone()[0]
    platform.finance(ORDERS, (4,))
    try:
        status = json.loads(platform.acme("pipeline", "status", "--json").stdout)
    finally:
        holder.rollback()
        holder.close()
    # Committed, not loaded: 1 customer and 4 orders (the held insert is not committed).
    assert status["lag_changes"] == 5
    assert status["lag_seconds"] >= 0
    assert status["oldest_open_transaction"]["pid"] == holder_pid
    assert status["watermark_change_id"] > 0 and status["source_matches_watermark"] is True
    # Capture's 4 SCHEMA and 4 TRUNCATE markers, 1 customer and 3 orders.
    assert status["last_load_changes"] == status["changes_staged"] == 12
    assert status["rows_per_table"]["analytics.fact_orders"] == 3
    text = platform.acme("pipeline", "status").stdout
    assert "lag: 5 changes" in text and "oldest open transaction: none" in text


def test_status_shows_the_staged_logs_freshness(platform):
    """dbt source freshness, through the moment the staged log is complete through: a load
    that lands nothing keeps an idle source fresh; loads that stop let it age, to a warning,
    then to an error that makes status exit 1. No moment: not measurable, not fresh."""
    platform.finance(ORDERS, (3,))
    platform.pipeline_run()

    def moment() -> str:
        (row,) = platform.analytics("select complete_through from staging.load_state", fetch=True)
        return row[0].isoformat()

    def age(interval: str) -> None:
        platform.analytics(
            f"update staging.load_state set complete_through = now() - interval '{interval}'"
        )

    fresh = change_log_freshness()
    assert (fresh["status"], fresh["complete_through"]) == ("pass", moment())
    assert (fresh["warn_after"], fresh["error_after"]) == ("15 minutes", "60 minutes")
    age("20 minutes")
    assert change_log_freshness()["status"] == "warn"
    age("2 hours")
    shown = platform.acme("pipeline", "status", "--json", check=False)
    assert shown.returncode == 1 and json.loads(shown.stdout)["freshness"]["status"] == "error"
    text = platform.acme("pipeline", "status", "--no-freshness").stdout
    assert "freshness: not checked (--no-freshness)" in text and "lag: 0 changes" in text
    # Nothing new on the source: the next load lands nothing and still moves the moment.
    stale = moment()
    assert platform.pipeline_run().load.changes == 0
    fresh = change_log_freshness()
    assert fresh["status"] == "pass" and fresh["complete_through"] > stale
    # No moment recorded, or none possible without commit times: not measurable.
    platform.analytics("update staging.load_state set complete_through = null")
    assert staged_log_freshness(True)["status"] == "not measurable"
    assert "track_commit_timestamp" in staged_log_freshness(False)["message"]


def test_local_up_again_is_harmless(platform, local_servers):
    again = platform.acme("local", "up")
    assert again.stdout.count("already running") == 2
    assert (
        json.loads((PROJECT_ROOT / os.environ["ACME_HOME"] / "connections.json").read_text())
        == local_servers
    )
    status = platform.acme("local", "status").stdout
    assert status.count(": running on 127.0.0.1:") == 2
    env = platform.acme("local", "env").stdout
    assert f"export ACME_FINANCE_DSN={local_servers['finance']}" in env
    assert f"export ACME_ANALYTICS_DSN={local_servers['analytics']}" in env


def test_docs_generate(platform):
    platform.finance(ORDERS, (1,))
    platform.acme("pipeline", "run")
    platform.acme("docs", "generate")
    target = Path(os.environ["ACME_HOME"]) / "dbt" / "target"
    catalog = json.loads((target / "catalog.json").read_text())
    assert "model.acme.fact_orders" in catalog["nodes"]
    manifest = json.loads((target / "manifest.json").read_text())
    assert {"exposure.acme.open_orders", "exposure.acme.top_customers"} <= set(
        manifest["exposures"]
    )


def test_acme_builds_wait_for_each_other(platform):
    platform.finance(ORDERS, (2,))
    holder = psycopg2.connect(platform.analytics_uri)
    holder.autocommit = True
    with holder.cursor() as cur:
        cur.execute("select pg_advisory_lock(%s)", (BUILD_LOCK_KEY,))  # a build under way
    run = subprocess.Popen(
        [*ACME, "pipeline", "run"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # a bigint key is (classid, objid) = (high, low) 32 bits in pg_locks
        deadline = time.monotonic() + 120
        while not platform.analytics(
            "select count(*) from pg_locks where locktype = 'advisory' and not granted "
            "and objsubid = 1 and objid = %s",
            (BUILD_LOCK_KEY & 0xFFFFFFFF,),
            fetch=True,
        )[0][0]:
            assert run.poll() is None, "the second build must wait for the first"
            assert time.monotonic() < deadline, "the build never asked for the lock"
            time.sleep(0.05)
        assert warehouse_orders(platform) == 0
    finally:
        holder.close()
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert warehouse_orders(platform) == 2
