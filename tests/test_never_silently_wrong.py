"""The warehouse is right or the pipeline stops, naming the fix: a finance_db restored in
place, a load landing mid-build, a source column retyped, renamed or holding a value the
model cannot hold, an analytics_db restored without statistics, and capture switched off."""

from __future__ import annotations

import subprocess
import sys
import time

from connections.settings import PROJECT_ROOT
from loader.copy_changes import load_changes
from tests.conftest import ACME
from tests.oracle import expected_csv
from tests.pgbench.harness import Follower
from tests.test_restore import FIRST, SECOND, assert_verified, dump, restore, staged

REPORTS = (
    ("open_orders", ()),
    ("top_delivery_dates", ()),
    ("pending_items", ()),
    ("top_customers", ()),
)


def assert_reports_match_source(platform, tmp_path) -> None:
    for report, options in REPORTS:
        out = tmp_path / f"{report}.csv"
        assert platform.export(report, out, *options) == expected_csv(
            platform.finance_uri, report
        ), report


def refused(platform, *needles: str) -> str:
    """`acme pipeline run` refuses with one line holding every needle, and lands nothing."""
    before = staged(platform)
    result = platform.acme("pipeline", "run", check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1, result.stderr
    for needle in needles:
        assert needle in error[0], error[0]
    assert staged(platform) == before, "nothing may land"
    return error[0]


def test_finance_restored_in_place_is_refused_until_resync(platform, tmp_path):
    platform.acme(*FIRST)
    platform.pipeline_run()
    dump(platform.finance_uri, tmp_path / "finance.dump")
    # A rolled-back transaction consumes change_ids; the restore hands them out again.
    conn = platform.finance_connection()
    with conn.cursor() as cur:
        cur.execute("update operations.orders set status = 'PROCESSING'")
    conn.rollback()
    conn.close()
    platform.finance(
        "update operations.customers set customer_name = 'Renamed after the dump' "
        "where customer_id = 1;"
        "insert into operations.customers (customer_name) values ('Only after the dump');"
        "update operations.orders set status = 'CANCELLED' "
        "where order_id = (select min(order_id) from operations.orders)"
    )
    platform.pipeline_run()
    restore(platform.finance_uri, tmp_path / "finance.dump")
    platform.finance(
        "update operations.customers set customer_name = 'Renamed after the restore' "
        "where customer_id = 2;"
        "update operations.orders set status = 'REPROCESSING' "
        "where order_id = (select max(order_id) from operations.orders)"
    )
    # Many changes after the restore: the check holds however far the sequence moves on.
    platform.acme(*SECOND)

    refused(platform, "finance_db has gone back in time", "acme pipeline resync")
    platform.acme("pipeline", "resync")
    platform.pipeline_run()
    assert_verified(platform)
    assert_reports_match_source(platform, tmp_path)
    assert platform.analytics(
        "select customer_name from analytics.dim_customers where customer_id = 1", fetch=True
    ) != [("Renamed after the dump",)]
    # ... and keeps up afterwards.
    platform.finance("update operations.customers set is_active = false where customer_id = 3")
    platform.pipeline_run()
    assert_verified(platform)


def test_a_build_applies_only_the_loads_landed_when_it_started(platform, tmp_path):
    platform.acme(*FIRST)
    platform.pipeline_run()
    applied = platform.analytics("select max(load_id) from staging.load_batches", fetch=True)[0][0]
    items = platform.analytics("select count(*) from analytics.fact_order_items", fetch=True)
    platform.finance("truncate operations.order_items")
    load_changes()
    # A build whose range was fixed before the truncate landed (dbt's var through_load_id,
    # which the on-run-start hook otherwise takes from the newest load) applies none of it,
    # and its data tests pass against what it applied.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from pipeline.dbt_build import run_dbt; "
            f"run_dbt('build', '--vars', '{{through_load_id: {applied}}}')",
        ],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    assert (
        platform.analytics("select count(*) from analytics.fact_order_items", fetch=True) == items
    )
    assert platform.analytics(
        "select distinct through_load_id from staging.applied_loads", fetch=True
    ) == [(applied,)]
    platform.pipeline_run()
    assert platform.analytics("select count(*) from analytics.fact_order_items", fetch=True) == [
        (0,)
    ]
    assert_verified(platform)
    assert_reports_match_source(platform, tmp_path)


def test_a_load_landing_mid_build_is_applied_by_the_next_build(platform, tmp_path):
    platform.acme(*FIRST)
    platform.pipeline_run()
    for _attempt in range(2):
        platform.finance("truncate operations.order_items")
        platform.acme(*SECOND)
        ranges_before = platform.analytics("select count(*) from staging.build_ranges", fetch=True)
        build = subprocess.Popen(
            [*ACME, "pipeline", "run"],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # Once the build has fixed its range, a load holding a truncate lands beside it.
        deadline = time.monotonic() + 120
        while (
            platform.analytics("select count(*) from staging.build_ranges", fetch=True)
            == ranges_before
        ):
            assert time.monotonic() < deadline, "the build never fixed its range"
            time.sleep(0.05)
        platform.finance("truncate operations.order_items")
        platform.finance(
            "insert into operations.order_items (order_id, product_id, quantity) "
            "select min(order_id), min(product_id), 7 from operations.orders, operations.products"
        )
        load_changes()
        output, _ = build.communicate(timeout=600)
        assert build.returncode == 0, output
        platform.pipeline_run()
        assert_verified(platform)
        assert_reports_match_source(platform, tmp_path)


def run_beside_follow(platform) -> None:
    """`acme pipeline run`, again while --follow's loader holds the loader lock."""
    deadline = time.monotonic() + 120
    while True:
        result = platform.acme("pipeline", "run", check=False)
        if result.returncode == 0:
            return
        assert "another loader is running" in result.stderr, result.stderr
        assert time.monotonic() < deadline, "never got the loader lock beside --follow"
        time.sleep(0.05)


def test_a_manual_run_beside_follow_does_not_stop_it(platform):
    platform.acme(*FIRST)
    follower = Follower.start("--test-interval", "0")
    try:
        follower.wait_for_cycles(1, 0.0, built=True)
        for seed in range(2):
            platform.acme("simulate", "--orders", "30", "--concurrency", "2", "--seed", str(seed))
            run_beside_follow(platform)
        since = time.monotonic()
        follower.wait_for_cycles(2, since)
    finally:
        output = follower.stop()
    assert follower.process.returncode == 0, output[-3000:]
    assert "is_current_state_of" not in output
    platform.pipeline_run()
    assert_verified(platform)


def test_a_retyped_column_the_model_cannot_hold_stops_before_anything_lands(platform, tmp_path):
    platform.acme(*FIRST)
    platform.pipeline_run()
    before = {report: expected_csv(platform.finance_uri, report) for report, _ in REPORTS}
    platform.finance(
        "alter table operations.products alter column unit_price type numeric(14, 4);"
        "update operations.products set unit_price = 12.3456 where product_id = 1;"
        "update operations.products set unit_price = 0.0049 where product_id = 2"
    )
    refused(
        platform,
        "operations.products",
        "unit_price is now numeric(14,4)",
        "numeric(12,2)",
        "acme pipeline resync",
    )
    # The reports still answer for the state before the change, not a rounded one.
    for report, options in REPORTS:
        out = tmp_path / f"{report}.csv"
        assert platform.export(report, out, *options) == before[report]

    platform.finance(
        "alter table operations.customers alter column customer_name type text;"
        f"update operations.customers set customer_name = '{'n' * 102_400}' "
        "where customer_id = 1"
    )
    refused(platform, "operations.products")  # the first mismatch in the stream is named
    # The way out: undo on the source, resync.
    platform.finance(
        "update operations.customers set customer_name = 'short again' where customer_id = 1;"
        "alter table operations.customers alter column customer_name type varchar(500);"
        "alter table operations.products alter column unit_price type numeric(12, 2)"
    )
    platform.acme("pipeline", "resync")
    platform.pipeline_run()
    assert_verified(platform)
    assert_reports_match_source(platform, tmp_path)


def test_a_renamed_column_stops_before_nulls_are_built(platform, tmp_path):
    platform.acme(*FIRST)
    platform.pipeline_run()
    # Renamed and renamed back with nothing written between: nothing was lost.
    platform.finance(
        "alter table operations.customers rename column customer_name to name;"
        "alter table operations.customers rename column name to customer_name;"
        "update operations.customers set is_active = false where customer_id = 1"
    )
    platform.pipeline_run()
    assert_verified(platform)

    platform.finance(
        "alter table operations.customers rename column customer_name to name;"
        "insert into operations.customers (name) values ('Written while renamed')"
    )
    refused(platform, "customer_name character varying(500) is gone", "name", "renamed?")
    verified = platform.acme("verify", "--json", check=False)
    assert verified.returncode != 0 and "customer_name" in verified.stdout
    assert platform.analytics(
        "select count(*) from analytics.dim_customers where customer_name is null", fetch=True
    ) == [(0,)]
    platform.finance("alter table operations.customers rename column name to customer_name")
    refused(platform, "customer_name")  # rows were written in the renamed shape
    platform.acme("pipeline", "resync")
    platform.pipeline_run()
    assert_verified(platform)
    assert_reports_match_source(platform, tmp_path)


def test_a_staged_value_the_model_cannot_hold_is_named_and_resync_gets_past_it(platform):
    platform.acme(*FIRST)
    platform.pipeline_run()
    # Capture that cannot see DDL (installed by a non-superuser) checks the catalog as it is
    # now, so a type widened and narrowed back between two loads goes unseen, and a value
    # written meanwhile is staged.
    platform.finance("drop event trigger acme_capture_schema")
    platform.finance(
        "alter table operations.products alter column unit_price type numeric(14, 4);"
        "update operations.products set unit_price = 9999999999.9999 where product_id = 1;"
        "update operations.products set unit_price = 5 where product_id = 1;"
        "alter table operations.products alter column unit_price type numeric(12, 2)"
    )
    result = platform.acme("pipeline", "run", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "operations.products.unit_price = '9999999999.9999'" in result.stderr
    assert "acme pipeline resync" in result.stderr
    platform.acme("pipeline", "resync")
    platform.pipeline_run()
    platform.acme("pipeline", "run", "--full-refresh")
    assert_verified(platform)


def test_the_first_run_after_a_warehouse_restore_has_statistics(platform, tmp_path):
    platform.acme(*FIRST)
    platform.pipeline_run()
    dump(platform.analytics_uri, tmp_path / "analytics.dump")
    restore(platform.analytics_uri, tmp_path / "analytics.dump")
    with_stats = (
        "select count(distinct tablename) from pg_stats where "
        "(schemaname, tablename) in (('staging', 'change_log'), ('analytics', 'fact_orders'))"
    )
    platform.analytics("select pg_stat_reset()")
    platform.pipeline_run()
    assert platform.analytics(with_stats, fetch=True) == [(2,)]
    assert_verified(platform)


def test_capture_that_is_not_whole_is_reported_and_refused(platform):
    platform.acme(*FIRST)
    platform.pipeline_run()
    assert platform.acme("capture", "status").returncode == 0
    platform.finance("alter table operations.orders disable trigger acme_capture_update")
    status = platform.acme("capture", "status", check=False)
    assert status.returncode == 1
    assert "operations.orders: acme_capture_update disabled" in status.stdout
    platform.finance("update operations.orders set status = 'CANCELLED' where order_id = 1")
    refused(platform, "acme_capture_update disabled", "acme capture install", "resync")
    assert "NOT WHOLE" in platform.acme("pipeline", "status").stdout

    platform.acme("capture", "install")
    assert platform.acme("capture", "status").returncode == 0
    platform.acme("pipeline", "resync")
    platform.pipeline_run()
    assert_verified(platform)

    # Capture fires ALWAYS: a session replaying as a replica is captured too.
    platform.finance(
        "set session_replication_role = replica;"
        "update operations.orders set status = 'PROCESSING' where order_id = 2"
    )
    platform.pipeline_run()
    assert_verified(platform)
