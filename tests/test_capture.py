"""Capture invariants against a real finance_db: committed changes once, aborted ones never,
late commits still loaded, newest state kept, existing rows snapshotted."""

from __future__ import annotations

CUSTOMER_AND_ORDER = """
insert into operations.customers (customer_name) values ('Acme Corp');
insert into operations.orders (customer_id, order_date, delivery_date, status)
values (1, '2026-01-01', '2026-01-02', 'PENDING');
"""


def change_count(platform) -> int:
    return platform.finance("select count(*) from cdc.change_log", fetch=True)[0][0]


def staged_orders(platform):
    return platform.analytics(
        "select order_id, status from analytics.fact_orders order by order_id", fetch=True
    )


def test_aborted_transaction_leaves_no_change(platform):
    platform.finance(CUSTOMER_AND_ORDER)
    before = change_count(platform)
    conn = platform.finance_connection()
    with conn.cursor() as cur:
        cur.execute("insert into operations.customers (customer_name) values ('never')")
        cur.execute("update operations.orders set status = 'CANCELLED'")
        cur.execute("truncate operations.order_items")
    conn.rollback()
    conn.close()
    assert change_count(platform) == before
    platform.finance("insert into operations.customers (customer_name) values ('kept')")
    assert change_count(platform) == before + 1


def test_every_operation_is_captured_with_row_images_and_txid(platform):
    platform.finance(CUSTOMER_AND_ORDER)
    platform.finance("update operations.orders set status = 'PROCESSING' where order_id = 1")
    platform.finance("delete from operations.orders where order_id = 1")
    platform.finance("truncate operations.order_items")
    rows = platform.finance(
        "select table_name, operation, primary_key, old_row ->> 'status', new_row ->> 'status',"
        " txid::text::bigint > 0 from cdc.change_log where operation <> 'SNAPSHOT' "
        "and change_id > 8 order by change_id",
        fetch=True,
    )
    assert rows == [
        ("customers", "INSERT", {"customer_id": 1}, None, None, True),
        ("orders", "INSERT", {"order_id": 1}, None, "PENDING", True),
        ("orders", "UPDATE", {"order_id": 1}, "PENDING", "PROCESSING", True),
        ("orders", "DELETE", {"order_id": 1}, "PROCESSING", None, True),
        ("order_items", "TRUNCATE", None, None, None, True),
    ]


def test_transaction_open_across_a_load_is_loaded_by_the_next(platform):
    platform.finance(CUSTOMER_AND_ORDER)
    late = platform.finance_connection()
    with late.cursor() as cur:
        cur.execute(
            "insert into operations.orders (customer_id, order_date, status) "
            "values (1, '2026-01-03', 'PENDING') returning order_id"
        )
        late_order = cur.fetchone()[0]
    # A later transaction commits while the first is still open.
    platform.finance(
        "insert into operations.orders (customer_id, order_date, status) "
        "values (1, '2026-01-04', 'PENDING')"
    )
    run = platform.acme("pipeline", "run")
    assert late_order not in [order_id for order_id, _ in staged_orders(platform)]
    status = platform.acme("pipeline", "status").stdout
    assert "oldest open transaction: pid" in status
    late.commit()
    late.close()
    platform.pipeline_run()
    assert [order_id for order_id, _ in staged_orders(platform)] == [1, late_order, late_order + 1]
    assert "loaded" in run.stdout


def test_newer_change_wins_when_an_older_one_lands_later(platform):
    platform.finance(CUSTOMER_AND_ORDER)
    platform.pipeline_run()
    # `early` takes its transaction id first; `later` then changes the order and commits;
    # `early` changes the same order afterwards, so it holds the newest state but the lower
    # txid: the loader lands its change first and the older one in a later batch.
    early = platform.finance_connection()
    with early.cursor() as cur:
        cur.execute("insert into operations.customers (customer_name) values ('takes an xid')")
    platform.finance("update operations.orders set status = 'PROCESSING' where order_id = 1")
    with early.cursor() as cur:
        cur.execute("update operations.orders set status = 'COMPLETED' where order_id = 1")
    early.commit()
    early.close()

    platform.acme("pipeline", "run", "--batch-size", "1", "--max-batches", "2")
    assert staged_orders(platform) == [(1, "COMPLETED")]
    platform.acme("pipeline", "run", "--batch-size", "1")
    assert staged_orders(platform) == [(1, "COMPLETED")]
    landing = platform.analytics(
        "select new_row ->> 'status', load_id from staging.change_log "
        "where table_name = 'orders' and operation = 'UPDATE' order by change_id",
        fetch=True,
    )
    (older_status, older_load), (newer_status, newer_load) = landing
    assert (older_status, newer_status) == ("PROCESSING", "COMPLETED")
    assert newer_load < older_load, "the scenario must land the older change later"


def test_initial_snapshot_captures_existing_rows(platform):
    platform.acme("capture", "uninstall", "--purge")
    platform.finance(CUSTOMER_AND_ORDER)
    platform.finance(
        "insert into operations.products (product_name) values ('Widget');"
        "insert into operations.order_items (order_id, product_id, quantity) values (1, 1, 3)"
    )
    install = platform.acme("capture", "install").stdout
    assert "operations.orders: capturing, snapshot of 1 existing rows" in install
    assert "already captured" in platform.acme("capture", "install").stdout
    snapshots = platform.finance(
        "select table_name, count(*) from cdc.change_log where operation = 'SNAPSHOT' "
        "group by 1 order by 1",
        fetch=True,
    )
    assert snapshots == [("customers", 1), ("order_items", 1), ("orders", 1), ("products", 1)]
    platform.pipeline_run()
    assert staged_orders(platform) == [(1, "PENDING")]
    assert platform.analytics("select quantity from analytics.fact_order_items", fetch=True) == [
        (3,)
    ]


def test_application_role_cannot_touch_the_change_log(platform):
    platform.finance(CUSTOMER_AND_ORDER)
    for statement in (
        "update cdc.change_log set operation = 'DELETE'",
        "delete from cdc.change_log",
        "truncate cdc.change_log",
        "insert into cdc.change_log (table_schema, table_name, operation) "
        "values ('operations', 'orders', 'TRUNCATE')",
    ):
        conn = platform.finance_connection()
        try:
            with conn.cursor() as cur:
                cur.execute("set role acme_app")
                try:
                    cur.execute(statement)
                except Exception as exc:  # noqa: BLE001
                    assert "permission denied" in str(exc)
                else:
                    raise AssertionError(f"acme_app could run: {statement}")
        finally:
            conn.rollback()
            conn.close()
    # ... while its writes to operations are still captured.
    platform.finance("set role acme_app; update operations.orders set status = 'PROCESSING'")
    assert platform.finance(
        "select count(*) from cdc.change_log where operation = 'UPDATE'", fetch=True
    ) == [(1,)]


def test_install_gives_way_to_application_transactions(platform):
    """Install locks tables in name order (order_items before orders); an application that
    holds orders and then writes order_items would deadlock with it. Install must be the
    one that gives way, and still finish."""
    import subprocess
    import time

    from tests.conftest import ACME, PROJECT_ROOT

    platform.acme("capture", "uninstall", "--purge")
    platform.finance(CUSTOMER_AND_ORDER)
    platform.finance("insert into operations.products (product_name) values ('Widget')")
    app = platform.finance_connection()
    with app.cursor() as cur:
        cur.execute("update operations.orders set status = 'PROCESSING' where order_id = 1")
    install = subprocess.Popen(
        [*ACME, "capture", "install"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Install now holds order_items and waits for orders, again and again: seen waiting once.
    deadline = time.monotonic() + 60
    while not platform.finance(
        "select count(*) from pg_locks where not granted "
        "and relation = 'operations.orders'::regclass",
        fetch=True,
    )[0][0]:
        assert install.poll() is None and time.monotonic() < deadline, "install never waited"
        time.sleep(0.02)
    started = time.monotonic()
    with app.cursor() as cur:
        cur.execute(
            "insert into operations.order_items (order_id, product_id, quantity) values (1, 1, 2)"
        )
    waited = time.monotonic() - started
    app.commit()
    app.close()
    out, err = install.communicate(timeout=60)
    assert install.returncode == 0, err
    assert "operations.order_items: capturing, snapshot of 1 existing rows" in out
    assert waited < 1.0, f"the application waited {waited:.1f}s on capture install"
    snapshot = platform.finance(
        "select new_row ->> 'status' from cdc.change_log "
        "where table_name = 'orders' and operation = 'SNAPSHOT'",
        fetch=True,
    )
    assert snapshot == [("PROCESSING",)], "the snapshot holds the committed state"
