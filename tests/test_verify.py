"""`acme verify` passes on a drained pipeline and names the keys of any difference."""

from __future__ import annotations

import json

from pipeline.cycle import run_cycle
from pipeline.dbt_build import FollowBuilds

WORKLOAD = ["simulate", "--orders", "120", "--concurrency", "3", "--seed", "3"]


def test_verify_passes_after_the_pipeline_drains(platform):
    platform.acme(*WORKLOAD)
    platform.pipeline_run()
    result = json.loads(platform.acme("verify", "--json").stdout)
    assert result["ok"] is True and result["pending_changes"] == 0
    # Each table against its mart, and against its history model's current versions.
    tables = {
        (table["source_table"], table["warehouse_table"]): table for table in result["tables"]
    }
    assert set(tables) == {
        (f"operations.{table}", f"analytics.{model}")
        for table, mart in (
            ("customers", "dim_customers"),
            ("products", "dim_products"),
            ("orders", "fact_orders"),
            ("order_items", "fact_order_items"),
        )
        for model in (mart, f"{mart}_history (current versions)")
    }
    assert all(t["source_rows"] == t["warehouse_rows"] > 0 for t in tables.values())


def test_verify_names_what_differs(platform):
    platform.acme(*WORKLOAD)
    platform.pipeline_run()
    platform.analytics(
        "update analytics.fact_orders set status = 'PENDING', delivery_date = delivery_date "
        "where order_id = (select min(order_id) from analytics.fact_orders "
        "where status <> 'PENDING');"
        "delete from analytics.fact_order_items "
        "where order_item_id = (select max(order_item_id) from analytics.fact_order_items);"
    )
    changed_order = platform.finance(
        "select min(order_id) from operations.orders where status <> 'PENDING'", fetch=True
    )[0][0]
    missing_item = platform.finance(
        "select max(order_item_id) from operations.order_items", fetch=True
    )[0][0]
    result = platform.acme("verify", check=False)
    assert result.returncode == 1
    assert f"key {changed_order} has other values" in result.stdout
    assert f"key {missing_item} missing from the warehouse" in result.stdout
    assert "verify: the warehouse differs from the source" in result.stderr


def test_verify_checks_the_history_current_versions(platform):
    platform.acme(*WORKLOAD)
    platform.pipeline_run()
    platform.analytics(
        "update analytics.fact_orders_history set status = 'NOT THE SOURCE' "
        "where is_current and order_id = (select min(order_id) from analytics.fact_orders)"
    )
    first_order = platform.finance("select min(order_id) from operations.orders", fetch=True)
    result = json.loads(platform.acme("verify", "--json", check=False).stdout)
    assert result["ok"] is False
    failed = [t for t in result["tables"] if not t["matches"]]
    assert [(t["warehouse_table"], t["differing_keys"]) for t in failed] == [
        (
            "analytics.fact_orders_history (current versions)",
            [f"{first_order[0][0]} has other values"],
        )
    ]


def test_verify_leaves_a_history_behind_its_mart_uncompared(platform):
    """--follow builds the history on its own interval: until then it lags the source, which
    is no fault, so verify says so instead of comparing it."""
    platform.acme(*WORKLOAD)
    builds = FollowBuilds(test_interval=86400, history_interval=3600, clock=lambda: 0.0)
    run_cycle(build_when_idle=True, follow_builds=builds)
    platform.finance(
        "update operations.orders set status = 'COMPLETED' "
        "where order_id = (select min(order_id) from operations.orders)"
    )
    assert run_cycle(build_when_idle=False, follow_builds=builds).build.nodes == 8  # marts
    result = json.loads(platform.acme("verify", "--json").stdout)
    assert result["ok"] is True
    histories = [t for t in result["tables"] if "_history" in t["warehouse_table"]]
    assert len(histories) == 4
    assert all(t["note"].startswith("not compared: built through load ") for t in histories)
    assert all(t["matches"] for t in result["tables"] if t not in histories)


def test_verify_counts_changes_not_yet_loaded(platform):
    platform.acme(*WORKLOAD)
    platform.pipeline_run()
    platform.finance(
        "update operations.customers set customer_name = customer_name || '!' "
        "where customer_id <= 2"
    )
    result = json.loads(platform.acme("verify", "--json", check=False).stdout)
    assert result["pending_changes"] == 2 and result["ok"] is False
    platform.pipeline_run()
    assert json.loads(platform.acme("verify", "--json").stdout)["ok"] is True


def test_verify_compares_numbers_by_value(platform):
    platform.finance(
        "insert into operations.products (product_name, unit_price) values ('Widget', 88.74)"
    )
    platform.pipeline_run()
    # The source now keeps four decimals (88.7400), the warehouse two (88.74): one price.
    platform.finance("alter table operations.products alter column unit_price type numeric(14, 4)")
    result = json.loads(platform.acme("verify", "--json", check=False).stdout)
    products = [t for t in result["tables"] if t["source_table"] == "operations.products"][0]
    assert products["matches"] is True, products
