"""`acme capture install` on a finance_db captured by the previous release (one generic
trigger function that EXECUTEs dynamic SQL, no load fence, no schema events) moves every
table to its own static capture function in place: changes written before, during and after
the upgrade all land once."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg2

from tests.test_restore import assert_verified, staged

PREVIOUS_RELEASE = Path(__file__).parent / "fixtures" / "change_log_v1.sql"
TABLES = ("customers", "products", "orders", "order_items")


def install_previous_release(platform) -> None:
    platform.finance("drop schema cdc cascade")
    platform.finance(PREVIOUS_RELEASE.read_text())
    for table in TABLES:
        platform.finance(f"select cdc.start_capture('operations.{table}')")


def test_install_upgrades_the_previous_release_in_place(platform):
    install_previous_release(platform)
    platform.acme("simulate", "--orders", "40", "--concurrency", "2", "--seed", "21")
    refused = platform.acme("pipeline", "run", check=False)
    assert refused.returncode == 1 and "installed by an older version" in refused.stderr

    stop = threading.Event()
    written = []

    def keep_writing() -> None:
        conn = psycopg2.connect(platform.finance_uri)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute(
                        "insert into operations.customers (customer_name) values ('during') "
                        "returning customer_id"
                    )
                    written.append(cur.fetchone()[0])
        finally:
            conn.close()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        platform.acme("capture", "install")
    finally:
        stop.set()
        writer.join()
    assert written, "the writer wrote while capture was upgraded"

    functions = platform.finance(
        "select distinct tgfoid::regproc::text from pg_trigger where tgname like 'acme_capture_%'",
        fetch=True,
    )
    assert len(functions) == len(TABLES)
    assert all(name.startswith("cdc.capture_operations_") for (name,) in functions)
    assert platform.finance(
        "select to_regprocedure('cdc.capture_changes()') is null", fetch=True
    ) == [(True,)]

    platform.acme("simulate", "--orders", "20", "--concurrency", "2", "--seed", "22")
    platform.acme("pipeline", "run")
    assert_verified(platform)
    logged = platform.finance("select count(*) from cdc.change_log", fetch=True)[0][0]
    assert staged(platform) == (logged, logged), "every change landed, once"
    during = platform.analytics(
        "select count(*) from analytics.dim_customers where customer_name = 'during'", fetch=True
    )
    assert during == [(len(written),)]


def test_a_renamed_table_is_logged_under_its_own_name(platform):
    platform.finance(
        "alter table operations.products rename to products_old;"
        "insert into operations.products_old (product_name) values ('after the rename')"
    )
    logged = platform.finance(
        "select table_name from cdc.change_log where operation = 'INSERT'", fetch=True
    )
    assert logged == [("products_old",)]
