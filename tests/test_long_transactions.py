"""A transaction held open on finance_db holds the loader's horizon back (docs/architecture.md,
"Load"): loads meanwhile land only what committed before it, `acme pipeline
status` names it and shows the lag, and when it ends nothing of it is skipped (commit) or
landed (abort)."""

from __future__ import annotations

import json
import re
import time

from loader.copy_changes import load_changes
from tests.oracle import expected_csv

BEFORE = """
insert into operations.customers (customer_name) values ('Acme Corp'), ('Globex');
insert into operations.products (product_name) values ('Widget'), ('Gadget');
insert into operations.orders (customer_id, order_date, delivery_date, status) values
    (1, '2026-01-01 10:00:00', '2026-01-05 09:00:00', 'PENDING'),
    (2, '2026-01-01 11:00:00', '2026-01-06 09:00:00', 'PENDING');
insert into operations.order_items (order_id, product_id, quantity) values (1, 1, 5), (2, 2, 1);
"""

# Committed while the held transactions are open: their txids are above the holder's.
AFTER = """
insert into operations.orders (customer_id, order_date, delivery_date, status)
values (2, '2026-01-02 12:00:00', '2026-01-07 09:00:00', 'PENDING');
update operations.orders set status = 'PROCESSING' where order_id = 2;
"""


def write(conn, sql: str, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone() if cur.description else None


def staged_count(platform, where: str = "true", params=None) -> int:
    return platform.analytics(
        f"select count(*) from staging.change_log where {where}", params, fetch=True
    )[0][0]


def warehouse_order_ids(platform) -> list[int]:
    rows = platform.analytics("select order_id from analytics.fact_orders order by 1", fetch=True)
    return [row[0] for row in rows]


def test_a_held_transaction_holds_the_watermark_back_and_is_never_skipped(platform, tmp_path):
    platform.finance(BEFORE)
    before_changes = platform.finance("select count(*) from cdc.change_log", fetch=True)[0][0]

    # Two transactions write and stay open: one will commit, the other abort.
    committer, aborter = platform.finance_connection(), platform.finance_connection()
    try:
        held_order, holder_pid, holder_xid = write(
            committer,
            "insert into operations.orders (customer_id, order_date, delivery_date, status) "
            "values (1, '2026-01-03 08:00:00', '2026-01-08 09:00:00', 'PENDING') "
            "returning order_id, pg_backend_pid(), pg_current_xact_id()::text::bigint",
        )
        held_since = time.monotonic()
        aborted_order, aborter_xid = write(
            aborter,
            "insert into operations.orders (customer_id, order_date, delivery_date, status) "
            "values (2, '2026-01-03 09:00:00', '2026-01-09 09:00:00', 'PENDING') "
            "returning order_id, pg_current_xact_id()::text::bigint",
        )
        write(aborter, "update operations.orders set status = 'CANCELLED' where order_id = 1")
        platform.finance(AFTER)
        after_committed = time.monotonic()
        after_order = platform.finance("select max(order_id) from operations.orders", fetch=True)

        # Load 1, through the CLI: only what committed before the holder began lands.
        run = platform.acme("pipeline", "run")
        assert f"loaded {before_changes} changes" in run.stdout
        assert staged_count(platform) == before_changes
        assert staged_count(platform, "txid >= %s", (holder_xid,)) == 0
        assert warehouse_order_ids(platform) == [1, 2]
        watermark_txid = platform.analytics("select last_txid from staging.load_state", fetch=True)[
            0
        ][0]
        assert watermark_txid < holder_xid

        # Status names the holder and shows the lag of the committed changes behind it.
        elapsed_held = time.monotonic() - held_since
        elapsed_after = time.monotonic() - after_committed
        status = json.loads(platform.acme("pipeline", "status", "--json", "--no-freshness").stdout)
        waiting = platform.finance(
            "select count(*) from cdc.change_log where txid > %s::text::xid8",
            (holder_xid,),
            fetch=True,
        )[0][0]
        assert waiting == 2  # AFTER's insert and update; the held ones are not visible
        assert status["lag_changes"] == waiting
        assert status["lag_seconds"] >= elapsed_after - 0.5
        assert status["horizon_txid"] == holder_xid
        assert status["watermark_txid"] == watermark_txid
        oldest = status["oldest_open_transaction"]
        assert oldest["pid"] == holder_pid and int(oldest["xid"]) == holder_xid
        assert oldest["state"] == "idle in transaction"
        assert oldest["age_seconds"] >= elapsed_held - 0.5
        text = platform.acme("pipeline", "status", "--no-freshness").stdout
        assert f"lag: {waiting} changes" in text
        assert f"oldest open transaction: pid {holder_pid} " in text
        shown_age = re.search(r"open (\d+(?:\.\d+)?)s", text)
        assert shown_age and float(shown_age[1]) >= elapsed_held - 0.5, text

        # Loads 2 and 3, a second apart: still held back, nothing lands, the horizon stays.
        for _ in range(2):
            time.sleep(1)
            load = load_changes()
            assert (load.changes, load.horizon_txid) == (0, holder_xid)
        assert staged_count(platform) == before_changes

        # The holder writes again after AFTER committed, then commits; the other aborts.
        write(
            committer,
            "update operations.orders set delivery_date = '2026-01-10 09:00:00' "
            "where order_id = %s",
            (held_order,),
        )
        write(
            committer,
            "insert into operations.order_items (order_id, product_id, quantity) values (%s, 2, 7)",
            (held_order,),
        )
        committer.commit()
        aborter.rollback()
    finally:
        committer.close()
        aborter.close()

    run = platform.acme("pipeline", "run")
    source_ids = platform.finance(
        "select change_id from cdc.change_log order by change_id", fetch=True
    )
    staged_ids = platform.analytics(
        "select change_id from staging.change_log order by change_id", fetch=True
    )
    assert staged_ids == source_ids, "every committed change landed exactly once"
    assert f"loaded {len(source_ids) - before_changes} changes" in run.stdout
    assert staged_count(platform, "txid = %s", (holder_xid,)) == 3
    assert staged_count(platform, "txid = %s", (aborter_xid,)) == 0
    assert aborted_order not in warehouse_order_ids(platform)
    assert warehouse_order_ids(platform) == [1, 2, held_order, after_order[0][0]]
    assert platform.analytics(
        "select status, delivery_date::text from analytics.fact_orders where order_id in (1, %s) "
        "order by order_id",
        (held_order,),
        fetch=True,
    ) == [("PENDING", "2026-01-05 09:00:00"), ("PENDING", "2026-01-10 09:00:00")]
    for report in ("open_orders", "pending_items", "top_customers"):
        out = tmp_path / f"{report}.csv"
        assert platform.export(report, out) == expected_csv(platform.finance_uri, report)

    status = json.loads(platform.acme("pipeline", "status", "--json", "--no-freshness").stdout)
    assert status["lag_changes"] == 0 and status["oldest_open_transaction"] is None
    assert status["watermark_txid"] > holder_xid


def test_status_names_a_prepared_transaction_holding_the_horizon(platform):
    platform.finance(BEFORE)
    platform.pipeline_run()
    prepared = platform.finance_connection()
    with prepared.cursor() as cur:
        cur.execute("insert into operations.customers (customer_name) values ('two-phase')")
        cur.execute("prepare transaction 'acme-test-gid'")
    prepared.close()  # a prepared transaction outlives its session
    try:
        platform.finance(AFTER)
        status = json.loads(platform.acme("pipeline", "status", "--json", "--no-freshness").stdout)
        holder = status["oldest_open_transaction"]
        assert holder["pid"] is None and holder["state"] == "prepared"
        assert holder["application"] == "prepared transaction acme-test-gid"
        assert status["lag_changes"] == 2
        text = platform.acme("pipeline", "status", "--no-freshness").stdout
        assert "oldest open transaction: no session" in text
        platform.pipeline_run()
        assert staged_count(platform, "new_row ->> 'customer_name' = 'two-phase'") == 0
    finally:
        finisher = platform.finance_connection()
        finisher.autocommit = True  # COMMIT PREPARED cannot run inside a transaction block
        with finisher.cursor() as cur:
            cur.execute("commit prepared 'acme-test-gid'")
        finisher.close()
    platform.pipeline_run()
    assert staged_count(platform, "new_row ->> 'customer_name' = 'two-phase'") == 1
