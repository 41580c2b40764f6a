"""The loader lands each committed change exactly once."""

from __future__ import annotations

import subprocess
import sys

from connections.connect import connected
from connections.settings import ANALYTICS, PROJECT_ROOT
from loader.copy_changes import NEXT_TXID, PAGE_SELECT, load_changes, prefer_ordered_scan
from loader.staging import VERSION_PREFIX, ensure_staging, staging_version
from loader.watermark import not_landed_parameters

WORKLOAD = """
insert into operations.customers (customer_name)
select 'customer ' || n from generate_series(1, 50) as n;
insert into operations.orders (customer_id, order_date, delivery_date, status)
select 1 + n % 50, '2026-01-01'::timestamp + n * interval '1 hour',
       '2026-01-10'::timestamp + (n % 5) * interval '1 day', 'PENDING'
from generate_series(1, 3000) as n;
update operations.orders set status = 'PROCESSING' where order_id % 3 = 0;
"""


def staged_counts(platform):
    return platform.analytics(
        "select count(*), count(distinct change_id) from staging.change_log", fetch=True
    )[0]


def test_second_run_without_changes_loads_nothing(platform):
    platform.finance(WORKLOAD)
    first = platform.acme("pipeline", "run").stdout
    assert (
        "loaded 4058 changes" in first
    )  # 4 schemas + 4 truncate markers + 50 customers + 3000 orders + 1000 updates
    second = platform.acme("pipeline", "run").stdout
    assert "loaded 0 changes in 0 batches" in second
    assert staged_counts(platform) == (4058, 4058)


def test_concurrent_loaders_never_duplicate_a_change(platform):
    platform.finance(WORKLOAD)
    command = [
        sys.executable,
        "-c",
        "from loader.copy_changes import load_changes; print(load_changes(batch_size=100).changes)",
    ]
    loaders = [
        subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outcomes = [loader.communicate(timeout=120) for loader in loaders]
    loaded = [int(out) for out, _err in outcomes if out.strip()]
    refused = [err for out, err in outcomes if not out.strip()]
    assert sum(loaded) == 4058
    assert all("another loader is running" in err for err in refused)
    assert staged_counts(platform) == (4058, 4058)


def test_a_lost_watermark_cannot_land_a_change_twice(platform):
    platform.finance(WORKLOAD)
    platform.pipeline_run()
    platform.analytics("update staging.load_state set last_txid = 0, last_change_id = 0")
    rerun = platform.acme("pipeline", "run", check=False)
    assert rerun.returncode == 1
    assert "already staged" in rerun.stderr
    assert "Traceback" not in rerun.stderr
    assert staged_counts(platform) == (4058, 4058)


def test_batches_commit_with_their_watermark(platform):
    platform.finance(WORKLOAD)
    platform.acme("pipeline", "run", "--batch-size", "1000")
    batches = platform.analytics(
        "select count(*), sum(change_count), max(last_change_id) from staging.load_batches",
        fetch=True,
    )[0]
    assert batches[0] == 5 and batches[1] == 4058  # pages of 1000
    watermark = platform.analytics("select last_change_id from staging.load_state", fetch=True)[0][
        0
    ]
    last_in_log = platform.finance(
        "select change_id from cdc.change_log order by txid desc, change_id desc limit 1",
        fetch=True,
    )[0][0]
    assert watermark == last_in_log


def test_max_batches_stops_on_a_transaction_boundary(platform):
    platform.finance(
        "insert into operations.customers (customer_name) "
        "select 'customer ' || n from generate_series(1, 5) as n"
    )

    def customers() -> int:
        return platform.analytics("select count(*) from analytics.dim_customers", fetch=True)[0][0]

    # Page one holds 3 of capture install's 8 schema and truncate markers: the other 5, of
    # the same transaction, land with it; the customers' transaction waits whole for the next
    # run.
    platform.acme("pipeline", "run", "--batch-size", "3", "--max-batches", "1")
    assert customers() == 0
    platform.acme("pipeline", "run", "--batch-size", "3", "--max-batches", "1")
    assert customers() == 5
    assert staged_counts(platform) == (13, 13)


def test_pages_read_the_log_in_index_order_before_it_is_analyzed(platform):
    """A backlog the planner has no statistics for yet (right after a burst) must not be
    sorted whole for every page: the loader's session forbids the sort. The same holds for
    the probe of the next change's transaction after each page."""
    # Storage parameters go on the log's partitions: the one segment a new log has.
    platform.finance("alter table cdc.change_log_s0 set (autovacuum_enabled = false)")
    platform.finance(WORKLOAD)
    conn = platform.finance_connection()
    parameters = not_landed_parameters(None, load_id=1, horizon=2**40, limit=50_000)
    try:
        with conn.cursor() as cur:
            page, probe = (
                cur.mogrify(query, parameters).decode() for query in (PAGE_SELECT, NEXT_TXID)
            )
            cur.execute(f"explain {page}")
            default_plan = "\n".join(row[0] for row in cur.fetchall())
            prefer_ordered_scan(cur)
            loader_plans = []
            for query in (page, probe):
                cur.execute(f"explain {query}")
                loader_plans.append("\n".join(row[0] for row in cur.fetchall()))
    finally:
        conn.close()
    assert "Sort  (" in default_plan  # the condition: without statistics, a sort of the log
    for plan in loader_plans:
        assert "Sort  (" not in plan and "Scan using change_log_s0_txid_change_id_idx " in plan, (
            plan
        )


def test_a_build_range_never_ends_inside_a_transaction(platform):
    platform.pipeline_run()
    platform.finance(
        "insert into operations.customers (customer_name) "
        "select 'customer ' || n from generate_series(1, 7) as n"
    )
    platform.acme("pipeline", "run", "--batch-size", "3")
    batches = platform.analytics(
        "select change_count, ends_transaction from staging.load_batches "
        "where load_id > (select min(load_id) from staging.load_batches) order by load_id",
        fetch=True,
    )
    assert batches == [(3, False), (3, False), (1, True)]
    ranges = platform.analytics(
        "select through_load_id from staging.build_ranges order by started_at", fetch=True
    )
    newest = platform.analytics("select max(load_id) from staging.load_batches", fetch=True)
    assert ranges[-1] == newest[0]


def test_staging_of_another_version_is_upgraded_once(platform):
    """The staging schema's version is the comment of load_state: a warehouse restored from
    an older dump (an older comment, a column missing) is upgraded by the next load; a load
    of the same version leaves the tables alone."""
    platform.finance("insert into operations.customers (customer_name) values ('a')")
    load_changes()
    marker = f"{VERSION_PREFIX}{staging_version()}"
    comment = "select obj_description('staging.load_state'::regclass, 'pg_class')"
    assert platform.analytics(comment, fetch=True) == [(marker,)]
    platform.analytics(
        "alter table staging.load_batches drop column ends_transaction; "
        "comment on table staging.load_state is 'acme staging schema 0123456789abcdef'"
    )
    load_changes()
    assert platform.analytics(comment, fetch=True) == [(marker,)]
    assert platform.analytics(
        "select count(*) from information_schema.columns where table_schema = 'staging' "
        "and table_name = 'load_batches' and column_name = 'ends_transaction'",
        fetch=True,
    ) == [(1,)]
    # Same version: not applied again (a column dropped by hand stays dropped).
    platform.analytics("alter table staging.load_batches drop column ends_transaction")
    with connected(ANALYTICS) as conn:
        ensure_staging(conn)
    assert platform.analytics(
        "select count(*) from information_schema.columns where table_schema = 'staging' "
        "and table_name = 'load_batches' and column_name = 'ends_transaction'",
        fetch=True,
    ) == [(0,)]
