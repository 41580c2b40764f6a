"""`acme simulate`: a realistic, repeatable workload."""

from __future__ import annotations

SOURCE_STATE = """
select 'orders', order_id, customer_id::text || order_date::text
       || coalesce(delivery_date::text, '') || status
from operations.orders
union all
select 'items', order_item_id, order_id::text || product_id::text || quantity::text
from operations.order_items
union all
select 'customers', customer_id, customer_name || is_active::text from operations.customers
order by 1, 2
"""


def simulate(platform, *args):
    return platform.acme("simulate", "--orders", "150", "--seed", "7", *args)


def test_same_seed_same_workload(platform):
    first = simulate(platform, "--concurrency", "1")
    state = platform.finance(SOURCE_STATE, fetch=True)
    platform.finance(
        "truncate operations.customers, operations.products, operations.orders, "
        "operations.order_items restart identity cascade"
    )
    second = simulate(platform, "--concurrency", "1")
    assert second.stdout == first.stdout
    assert platform.finance(SOURCE_STATE, fetch=True) == state


def test_workload_is_realistic_and_concurrent(platform):
    result = simulate(platform, "--concurrency", "4")
    assert "150 orders with" in result.stdout
    statuses = dict(
        platform.finance("select status, count(*) from operations.orders group by 1", fetch=True)
    )
    assert set(statuses) <= {"PENDING", "PROCESSING", "REPROCESSING", "COMPLETED", "CANCELLED"}
    assert statuses["PENDING"] > 0 and statuses["COMPLETED"] > 0
    items = platform.finance(
        "select min(n), max(n) from (select count(*) as n from operations.order_items "
        "group by order_id) as per_order",
        fetch=True,
    )[0]
    assert items[0] >= 1 and items[1] <= 10
    operations = dict(
        platform.finance(
            "select table_name || ' ' || operation, count(*) from cdc.change_log group by 1",
            fetch=True,
        )
    )
    assert operations["orders DELETE"] > 0 and operations["order_items DELETE"] > 0
    assert operations["customers UPDATE"] > 0
    writers = platform.finance(
        "select count(distinct txid) from cdc.change_log where table_name = 'orders'", fetch=True
    )[0][0]
    assert writers > 150
    assert "orders" in result.stderr, "a progress bar is shown on stderr"


def test_duration_bounds_the_run(platform):
    result = platform.acme("simulate", "--orders", "1000000", "--duration", "1")
    placed = int(result.stdout.split(" orders")[0])
    assert 0 < placed < 1000000
