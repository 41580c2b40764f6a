"""The history models hold every committed version of every row, dated by commit time: at any
moment T, the versions valid at T are the source's rows as a reader saw them at T. Proved
against the source itself: its tables are read at several moments of a workload (a key changed
twice in one transaction, deletes, a delete then a re-insert of the same key, transactions
committed youngest-first so older changes land in later loads, a truncate), and later, after
more changes, the history's versions at each moment must equal what was read then."""

from __future__ import annotations

import psycopg2

from loader.copy_changes import load_changes
from pipeline.dbt_build import INCREMENTAL_MODELS, run_dbt
from tests.test_reports import FIRST_ROUND, SECOND_ROUND

# Per history model: its source table, key and source columns.
HISTORIES = {
    "dim_customers_history": (
        "customers",
        "customer_id",
        "customer_name, is_active, created_at, updated_at",
    ),
    "dim_products_history": (
        "products",
        "product_id",
        "product_name, barcode, unit_price, is_active, created_at, updated_at",
    ),
    "fact_orders_history": (
        "orders",
        "order_id",
        "customer_id, order_date, delivery_date, status, created_at, updated_at",
    ),
    "fact_order_items_history": (
        "order_items",
        "order_item_id",
        "order_id, product_id, quantity, created_at, updated_at",
    ),
}


def source_at_now(platform) -> tuple[object, dict[str, list]]:
    """The moment (the source's clock, after every commit so far) and each table's rows."""
    conn = psycopg2.connect(platform.finance_uri)
    try:
        with conn, conn.cursor() as cur:
            # In one snapshot, and the moment read after it was taken: whatever commits later
            # commits after the moment.
            cur.execute("begin isolation level repeatable read")
            rows = {}
            for table, key, columns in HISTORIES.values():
                cur.execute(f"select {key}, {columns} from operations.{table} order by 1")
                rows[table] = cur.fetchall()
            cur.execute("select clock_timestamp()")
            moment = cur.fetchone()[0]
    finally:
        conn.close()
    return moment, rows


def history_at(platform, moment) -> dict[str, list]:
    rows = {}
    for model, (table, key, columns) in HISTORIES.items():
        rows[table] = platform.analytics(
            f"select {key}, {columns} from analytics.{model} "
            "where valid_from <= %(t)s and (valid_to is null or valid_to > %(t)s) order by 1",
            {"t": moment},
            fetch=True,
        )
    return rows


def build() -> None:
    load_changes()
    run_dbt("run", "--quiet", "--select", INCREMENTAL_MODELS)


def test_history_at_each_moment_is_what_the_source_held(platform):
    platform.finance(FIRST_ROUND)
    platform.acme("pipeline", "run")
    moments = [source_at_now(platform)]

    platform.finance(
        # a key changed twice in one transaction: the first version is valid at no moment
        "begin;"
        "update operations.orders set status = 'PROCESSING' where order_id = 4;"
        "update operations.orders set status = 'REPROCESSING' where order_id = 4;"
        "commit;"
    )
    platform.finance(SECOND_ROUND)
    moments.append(source_at_now(platform))
    build()

    # Youngest first: the older transaction took its xid and change ids first and commits
    # last, so its changes land in a later load than the newer one's.
    older = psycopg2.connect(platform.finance_uri)
    try:
        with older.cursor() as cur:
            cur.execute("update operations.orders set status = 'COMPLETED' where order_id = 1")
            platform.finance("update operations.order_items set quantity = 7 where order_id = 1")
            platform.finance(
                "update operations.customers set is_active = false where customer_id = 2"
            )
            moments.append(source_at_now(platform))
            build()
            cur.execute("delete from operations.order_items where order_item_id = 2")
            cur.execute(
                "insert into operations.order_items (order_item_id, order_id, product_id, quantity)"
                " values (2, 4, 1, 3)"
            )
        older.commit()
    finally:
        older.close()
    moments.append(source_at_now(platform))
    build()

    platform.finance(
        "truncate operations.order_items;"
        "insert into operations.order_items (order_id, product_id, quantity) values (4, 2, 9);"
    )
    moments.append(source_at_now(platform))
    platform.finance("update operations.orders set status = 'CANCELLED' where order_id = 4")
    platform.finance("delete from operations.products where product_id = 4")
    platform.acme("pipeline", "run")  # the product's command: its data tests run too

    for moment, source_rows in moments:
        assert history_at(platform, moment) == source_rows, moment

    # Built incrementally through all that, the history is what one full build makes of it.
    versions = {model: all_versions(platform, model) for model in HISTORIES}
    run_dbt("run", "--quiet", "--full-refresh", "--select", "path:models/history")
    assert {model: all_versions(platform, model) for model in HISTORIES} == versions


def all_versions(platform, model: str) -> list:
    return platform.analytics(f"select * from analytics.{model} order by change_id", fetch=True)


def test_versions_chain_by_change_and_say_how_they_ended(platform):
    platform.finance(FIRST_ROUND)
    platform.finance("update operations.orders set status = 'PROCESSING' where order_id = 1")
    platform.finance("delete from operations.orders where order_id = 1")
    platform.finance("truncate operations.customers cascade")
    platform.acme("pipeline", "run")

    versions = platform.analytics(
        "select status, ended_by, is_current, valid_to = lead(valid_from) over w "
        "from analytics.fact_orders_history where order_id = 1 "
        "window w as (order by change_id) order by change_id",
        fetch=True,
    )
    assert versions == [("PENDING", "UPDATE", False, True), ("PROCESSING", "DELETE", False, None)]
    # Every customer's version was ended by the truncate, at its commit time.
    assert platform.analytics(
        "select distinct ended_by, is_current, valid_to = ("
        "  select committed_at from staging.change_log"
        "  where operation = 'TRUNCATE' and table_name = 'customers'"
        "  order by change_id desc limit 1) "
        "from analytics.dim_customers_history",
        fetch=True,
    ) == [("TRUNCATE", False, True)]
    # Commit times were staged: the source tracks them.
    assert platform.analytics(
        "select count(*) from staging.change_log where committed_at is null", fetch=True
    ) == [(0,)]
