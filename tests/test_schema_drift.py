"""Schema drift: a column added to a captured source table flows into the staged row images
without breaking the pipeline; the marts and reports keep working, and `acme verify`
compares the shared columns and names the new one."""

from __future__ import annotations

import json

from tests.oracle import expected_csv

ROWS = """
insert into operations.customers (customer_name) values ('Acme Corp'), ('Globex');
insert into operations.products (product_name) values ('Widget');
insert into operations.orders (customer_id, order_date, delivery_date, status) values
    (1, '2026-01-01 10:00:00', '2026-01-05 09:00:00', 'PENDING'),
    (2, '2026-01-01 11:00:00', '2026-01-06 09:00:00', 'PENDING'),
    (2, '2026-01-01 12:00:00', '2026-01-06 09:00:00', 'PROCESSING');
insert into operations.order_items (order_id, product_id, quantity) values (1, 1, 2), (2, 1, 3);
"""

DRIFT = """
alter table operations.orders add column note text;
insert into operations.orders (customer_id, order_date, delivery_date, status, note)
values (1, '2026-01-02 10:00:00', '2026-01-06 09:00:00', 'PENDING', 'leave at the door, "please"');
update operations.orders set note = 'rush', status = 'REPROCESSING' where order_id = 3;
update operations.orders set status = 'COMPLETED' where order_id = 2;
insert into operations.order_items (order_id, product_id, quantity) values (4, 1, 4);
"""


def staged_images(platform, order_id: int) -> list[tuple]:
    return platform.analytics(
        "select operation, new_row ? 'note', new_row ->> 'note' from staging.change_log "
        "where table_name = 'orders' and primary_key = jsonb_build_object('order_id', %s) "
        "order by change_id",
        (order_id,),
        fetch=True,
    )


def assert_reports_match_source(platform, tmp_path) -> None:
    for report, command, options in (
        ("open_orders", "open_orders", ()),
        ("open_orders_summary", "open_orders", ("--summary",)),
        ("top_delivery_dates", "top_delivery_dates", ()),
        ("pending_items", "pending_items", ()),
        ("top_customers", "top_customers", ()),
    ):
        out = tmp_path / f"{report}.csv"
        assert platform.export(command, out, *options) == expected_csv(
            platform.finance_uri, report
        ), f"{report} differs from the source"


def test_an_added_column_flows_into_staging_and_breaks_nothing(platform, tmp_path):
    platform.finance(ROWS)
    platform.pipeline_run()

    platform.finance(DRIFT)
    run = platform.acme("pipeline", "run")
    # The column's SCHEMA change, then four rows.
    assert "loaded 5 changes" in run.stdout, run.stdout
    status = platform.acme("pipeline", "status").stdout
    assert "operations.orders: source columns no model reads yet: note" in status

    # The row images carry the new key from the first change made after the column came.
    assert staged_images(platform, 4) == [("INSERT", True, 'leave at the door, "please"')]
    assert staged_images(platform, 3) == [("INSERT", False, None), ("UPDATE", True, "rush")]
    assert staged_images(platform, 2)[-1] == ("UPDATE", True, None)
    assert platform.analytics(
        "select old_row ? 'note', new_row ? 'note' from staging.change_log "
        "where table_name = 'orders' and operation = 'UPDATE' and new_row ->> 'note' = 'rush'",
        fetch=True,
    ) == [(True, True)], "the old image is read after the column was added, so it has it too"

    # The marts follow the changes; their columns stay what the models declare.
    assert platform.analytics(
        "select order_id, status from analytics.fact_orders order by order_id", fetch=True
    ) == [(1, "PENDING"), (2, "COMPLETED"), (3, "REPROCESSING"), (4, "PENDING")]
    mart_columns = platform.analytics(
        "select column_name from information_schema.columns "
        "where table_schema = 'analytics' and table_name = 'fact_orders'",
        fetch=True,
    )
    assert ("note",) not in mart_columns and ("status",) in mart_columns
    assert_reports_match_source(platform, tmp_path)

    result = json.loads(platform.acme("verify", "--json").stdout)
    assert result["ok"] is True and result["pending_changes"] == 0, result
    orders = next(t for t in result["tables"] if t["source_table"] == "operations.orders")
    assert orders["source_rows"] == orders["warehouse_rows"] == 4 and orders["matches"]
    assert "note" in orders["note"] and "not compared" in orders["note"]
    assert "not in the warehouse, not compared: note" in platform.acme("verify").stdout
