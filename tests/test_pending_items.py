"""reports.pending_items is maintained by adding and subtracting (fact_pending_order_items,
agg_pending_items_by_product) instead of joining every item with its order on each read.
Through incremental builds of a mixed workload (status changes in and out of pending,
quantity changes, items moved between orders and products, item and order deletes, a
transaction that commits late, a truncate, a resync, one of the two models rebuilt alone)
it stays equal to the plain join over the marts and to the same question asked of the
source; and the as-of report, read from the pending-items history, equals the join over the
order and item histories at every moment they changed."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import psycopg2

from connections.settings import PROJECT_ROOT
from loader.copy_changes import load_changes
from pipeline.dbt_build import INCREMENTAL_MODELS, run_dbt
from tests.oracle import ORACLE_QUERIES, expected_csv
from tests.test_reports import FIRST_ROUND, SECOND_ROUND

# The report as it was computed before it was maintained: the join over the marts.
JOIN_OVER_THE_MARTS = """
    select i.product_id, sum(i.quantity) as quantity,
           date_trunc('second', max(greatest(i.updated_at, o.updated_at))) as last_updated
    from analytics.fact_order_items as i
    join analytics.fact_orders as o using (order_id)
    where o.status = 'PENDING'
    group by 1
"""

# The same answer at a moment %(t)s, over the histories' versions in force then: what
# reports.pending_items_as_of reads from the pending-items history instead.
JOIN_OVER_THE_HISTORIES = """
    with orders as (
        select * from analytics.fact_orders_history
        where valid_from <= %(t)s and (valid_to is null or valid_to > %(t)s)
    ), items as (
        select * from analytics.fact_order_items_history
        where valid_from <= %(t)s and (valid_to is null or valid_to > %(t)s)
    )
    select i.product_id, sum(i.quantity) as quantity,
           date_trunc('second', max(greatest(i.updated_at, o.updated_at))) as last_updated
    from items as i
    join orders as o using (order_id)
    where o.status = 'PENDING'
    group by 1 order by 1
"""

# Every moment a version of an order or item starts or ends, and the microsecond before it.
VERSION_MOMENTS = """
    select distinct around.at from (
        select valid_from as moment from analytics.fact_orders_history
        union all select valid_to from analytics.fact_orders_history
        union all select valid_from from analytics.fact_order_items_history
        union all select valid_to from analytics.fact_order_items_history
    ) as ends, lateral (values (moment), (moment - interval '1 microsecond')) as around (at)
    where moment is not null
"""

# Orders in and out of pending, quantities, an item moved to another order and product, a
# deleted item, a deleted order with items, a new order with an item; an update that keeps
# an order pending (only its updated_at moves). The new order's updated_at is set an hour
# ahead of its commit, as an application may: the source's touch_updated_at trigger
# overrides it on updates only.
MIXED_ROUND = """
update operations.orders set status = 'PENDING' where order_id in (3, 5);
update operations.orders set status = 'PROCESSING' where order_id = 1;
update operations.orders set updated_at = now() at time zone 'utc' + interval '1 hour'
where order_id = 8;
update operations.order_items set quantity = quantity + 5 where order_item_id in (1, 2);
update operations.order_items set order_id = 12, product_id = 1 where order_item_id = 3;
delete from operations.order_items where order_item_id = 4;
delete from operations.orders where order_id = 11;
insert into operations.orders (customer_id, order_date, delivery_date, status, updated_at) values
    (1, '2026-01-06 09:00:00', '2026-01-10 08:00:00', 'PENDING',
     now() at time zone 'utc' + interval '1 hour');
insert into operations.order_items (order_id, product_id, quantity)
select max(order_id), 2, 9 from operations.orders;
"""

# Every product's latest item leaves pending, so each max must be looked up again: an item
# of each product is touched (touch_updated_at sets its updated_at to the transaction's
# start, the latest of all) and its order completed.
MAX_LEAVES_ROUND = """
update operations.order_items set quantity = quantity + 1
where order_item_id in (select min(order_item_id) from operations.order_items group by product_id);
update operations.orders set status = 'COMPLETED'
where order_id in (
    select order_id from operations.order_items
    where updated_at = now() at time zone 'utc'
);
"""

# A truncate of the items, then new ones (order 11 is deleted by MIXED_ROUND).
TRUNCATE_ROUND = """
truncate operations.order_items;
insert into operations.order_items (order_id, product_id, quantity) values
    (4, 1, 10), (8, 2, 20), (12, 4, 3), (13, 4, 4), (14, 1, 5);
"""


def dbt_by_hand(*args: str) -> subprocess.CompletedProcess:
    """One dbt command, as a user runs it beside acme (its own process and range)."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            f"from pipeline.dbt_build import run_dbt; run_dbt({', '.join(map(repr, args))})",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )


def build_in_process() -> None:
    """Load, then what a --follow cycle builds, without the data tests: the rounds between
    those that run the whole pipeline (Platform.pipeline_run(), data tests included)."""
    load_changes()
    run_dbt("run", "--quiet", "--select", INCREMENTAL_MODELS)


def assert_pending_items_hold(platform, tmp_path, export: bool = True) -> None:
    report = platform.analytics("select * from reports.pending_items order by 1", fetch=True)
    joined = platform.analytics(JOIN_OVER_THE_MARTS + " order by 1", fetch=True)
    assert report == joined
    assert_as_of_is_the_join_at_every_moment(platform)
    if export:
        out = tmp_path / "pending_items.csv"
        assert platform.export("pending_items", out) == expected_csv(
            platform.finance_uri, "pending_items"
        )
    else:
        assert report == platform.finance(ORACLE_QUERIES["pending_items"], fetch=True)
    # Versions retired before the aggregate's last range are dropped (by the next build of
    # the version table: the aggregate builds after it).
    assert platform.analytics(
        "select count(*) from analytics.fact_pending_order_items "
        "where removed_load_id < (select through_load_id from staging.applied_loads "
        "where model_name = 'agg_pending_items_by_product')",
        fetch=True,
    ) == [(0,)]


def test_pending_items_stay_the_join_through_a_mixed_workload(platform, tmp_path):
    platform.finance(FIRST_ROUND)
    platform.pipeline_run()
    assert_pending_items_hold(platform, tmp_path)
    assert platform.analytics("select count(*) from reports.pending_items", fetch=True)[0][0]

    for changes in (SECOND_ROUND, MIXED_ROUND, MAX_LEAVES_ROUND):
        platform.finance(changes)
        build_in_process()
        assert_pending_items_hold(platform, tmp_path, export=False)

    # A transaction that took its change_ids first commits last: its changes land in a
    # later load than those of a newer one.
    late = psycopg2.connect(platform.finance_uri)
    try:
        with late.cursor() as cur:
            cur.execute("update operations.orders set status = 'PENDING' where order_id = 1")
            platform.finance("update operations.order_items set quantity = 77 where order_id = 1")
            platform.finance("update operations.orders set status = 'PENDING' where order_id = 3")
            build_in_process()
            assert_pending_items_hold_as_landed(platform)
            cur.execute("update operations.orders set status = 'CANCELLED' where order_id = 5")
        late.commit()
    finally:
        late.close()
    platform.pipeline_run()
    assert_pending_items_hold(platform, tmp_path)

    platform.finance(TRUNCATE_ROUND)
    build_in_process()
    assert_pending_items_hold(platform, tmp_path, export=False)

    platform.finance(MIXED_ROUND)
    platform.acme("pipeline", "resync")
    platform.pipeline_run()
    assert_pending_items_hold(platform, tmp_path)


def assert_pending_items_hold_as_landed(platform) -> None:
    """While a transaction is open: the report equals the join over what the marts hold."""
    report = platform.analytics("select * from reports.pending_items order by 1", fetch=True)
    assert report == platform.analytics(JOIN_OVER_THE_MARTS + " order by 1", fetch=True)
    assert_as_of_is_the_join_at_every_moment(platform)


def assert_as_of_is_the_join_at_every_moment(platform) -> None:
    """reports.pending_items_as_of, read from the pending-items history, equals the join over
    the histories at every moment either of them changed and just before it."""
    conn = psycopg2.connect(platform.analytics_uri)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(VERSION_MOMENTS)
            moments = [row[0] for row in cur.fetchall()]
            assert moments
            for moment in moments:
                cur.execute("select set_config('acme.as_of', %s, true)", (moment.isoformat(),))
                cur.execute("select * from reports.pending_items_as_of order by 1")
                as_of = cur.fetchall()
                cur.execute(JOIN_OVER_THE_HISTORIES, {"t": moment})
                assert as_of == cur.fetchall(), moment
    finally:
        conn.close()


def test_a_rebuilt_version_table_is_recounted_not_added_again(platform, tmp_path):
    platform.finance(FIRST_ROUND)
    platform.pipeline_run()
    # fact_pending_order_items rebuilt alone: its versions are new, and the aggregate, which
    # counted the old ones, must recompute instead of adding them.
    platform.finance(SECOND_ROUND)
    load_changes()
    rebuilt = dbt_by_hand(
        "run",
        "--full-refresh",
        "--select",
        "fact_orders",
        "fact_order_items",
        "fact_pending_order_items",
    )
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    platform.finance(MIXED_ROUND)
    platform.pipeline_run()
    assert_pending_items_hold(platform, tmp_path)


def test_the_aggregate_refuses_a_range_its_versions_have_not_applied(platform, tmp_path):
    platform.finance(FIRST_ROUND)
    platform.pipeline_run()
    platform.finance(SECOND_ROUND + MIXED_ROUND)
    load_changes()
    for model in ("agg_pending_items_by_product", "fact_pending_order_items"):
        alone = dbt_by_hand("run", "--select", model)
        assert alone.returncode != 0
        assert "first" in alone.stdout + alone.stderr
    platform.pipeline_run()
    assert_pending_items_hold(platform, tmp_path)


def load_untimed(platform, dated) -> None:
    """Load, then stage what landed as a source that does not track commit times stages it:
    no commit time, dated by the statement, here `dated`."""
    load_changes()
    platform.analytics(
        "update staging.change_log set committed_at = null, changed_at = %s "
        "where load_id = (select max(load_id) from staging.load_batches)",
        (dated,),
    )
    run_dbt("run", "--quiet", "--select", INCREMENTAL_MODELS)


def pending_items_history(platform) -> list:
    return [
        platform.analytics(f"select * from analytics.{model} order by {order}", fetch=True)
        for model, order in (
            ("fact_pending_item_intervals", "change_id, order_change_id"),
            ("agg_pending_items_by_product_history", "product_id, valid_from"),
        )
    ]


def test_a_change_that_lands_late_dated_after_a_newer_one_is_rederived_whole(platform):
    """Without commit times a change is dated by its statement. Item 1 is changed by a
    transaction A and then by an older transaction B whose statement started first (dated
    earlier) but wrote last; a transaction held open between their xids lands B first and A
    later. A's change then moves the item's history before A's own date (the version before
    it now ends at A's date, not B's): the pending-items history is derived again whole, and
    equals the join and what a full build makes of it."""
    platform.finance(FIRST_ROUND)
    platform.finance("update operations.orders set status = 'PENDING' where order_id = 1")
    platform.pipeline_run()
    (now,) = platform.analytics("select now()", fetch=True)[0]
    older, held = platform.finance_connection(), platform.finance_connection()
    try:
        with older.cursor() as cur:
            cur.execute("update operations.orders set status = 'PENDING' where order_id = 5")
        with held.cursor() as cur:
            cur.execute("update operations.orders set status = 'PENDING' where order_id = 6")
        platform.finance("update operations.order_items set quantity = 2 where order_item_id = 1")
        with older.cursor() as cur:
            cur.execute("update operations.order_items set quantity = 3 where order_item_id = 1")
        older.commit()
        load_untimed(platform, now + timedelta(seconds=5))  # B lands, A waits behind held
        held.commit()
        load_untimed(platform, now + timedelta(seconds=10))
    finally:
        older.close()
        held.close()
    assert platform.analytics(
        "select quantity, coalesce(valid_to < valid_from, false) "
        "from analytics.fact_order_items_history "
        "where order_item_id = 1 order by change_id",
        fetch=True,
    )[-2:] == [(2, True), (3, False)]
    assert_as_of_is_the_join_at_every_moment(platform)
    incremental = pending_items_history(platform)
    run_dbt(
        "run",
        "--quiet",
        "--full-refresh",
        "--select",
        "fact_pending_item_intervals",
        "agg_pending_items_by_product_history",
    )
    assert pending_items_history(platform) == incremental
