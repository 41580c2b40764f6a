"""Source data at benchmark scale, written through capture as an application would write it.

A dataset has `orders` orders with about five items each, over a customer and a product base
that grows with it. Every order is open (PENDING, PROCESSING or REPROCESSING) when written, so
at 1M orders the open_orders export has about 1M rows, the size the memory figure asks for.
Rows are written in set-based statements of CHUNK rows, each one captured by the statement
triggers like any application statement.
"""

from __future__ import annotations

from bench.cluster import Pair
from loader.capture import install as install_capture
from workload.schema import create_source_schema

CHUNK = 100_000
ITEMS_PER_ORDER = 5
DELIVERY_DAYS = 60


def install_source(pair: Pair) -> None:
    """The operations schema and capture, on an empty pair."""
    with pair.active():
        create_source_schema()
        install_capture()


def reference_sizes(orders: int) -> tuple[int, int]:
    """Customers and products for a dataset of this many orders."""
    return max(200, orders // 20), max(100, orders // 200)


def add_reference_data(pair: Pair, orders: int) -> None:
    customers, products = reference_sizes(orders)
    pair.finance(
        """
        insert into operations.customers (customer_name)
        select 'customer ' || n from generate_series(1, %(customers)s) as n;
        insert into operations.products (product_name, barcode, unit_price)
        select 'product ' || n, lpad(n::text, 13, '0'), (n %% 500) + 0.99
        from generate_series(1, %(products)s) as n;
        """,
        {"customers": customers, "products": products},
    )


def add_orders(pair: Pair, orders: int, chunk: int = CHUNK, progress=None) -> None:
    """Appends `orders` open orders and their items, CHUNK orders per statement pair."""
    first, customers, products = pair.finance(
        "select (select coalesce(max(order_id), 0) from operations.orders), "
        "(select max(customer_id) from operations.customers), "
        "(select max(product_id) from operations.products)",
        fetch=True,
    )[0]
    for start in range(0, orders, chunk):
        count = min(chunk, orders - start)
        pair.finance(
            """
            insert into operations.orders (order_id, customer_id, order_date, delivery_date, status)
            select
                id,
                1 + (id * 7919) %% %(customers)s,
                timestamp '2026-09-01' + (id %% 86400) * interval '1 minute',
                timestamp '2026-11-01' + (id %% %(days)s) * interval '1 day',
                (array['PENDING', 'PENDING', 'PROCESSING', 'PROCESSING', 'REPROCESSING'])[
                    1 + id %% 5]
            from generate_series(%(low)s::bigint, %(high)s::bigint) as id;
            insert into operations.order_items (order_id, product_id, quantity)
            select id, 1 + (id * 31 + n * 97) %% %(products)s, 1 + (id + n) %% 9
            from generate_series(%(low)s::bigint, %(high)s::bigint) as id
            cross join generate_series(1, %(items)s) as n;
            """,
            {
                "customers": customers,
                "products": products,
                "days": DELIVERY_DAYS,
                "low": first + start + 1,
                "high": first + start + count,
                "items": ITEMS_PER_ORDER,
            },
        )
        if progress:
            progress(f"{pair.name}: {start + count:,} of {orders:,} orders written")
    pair.finance(
        "select setval(pg_get_serial_sequence('operations.orders', 'order_id'), "
        "(select max(order_id) from operations.orders))"
    )


def set_capture(pair: Pair, enabled: bool) -> None:
    """Switches the capture triggers of every captured table on or off, leaving the rest of
    the installation alone, so with and without capture run on the same tables."""
    triggers = pair.finance(
        "select tgrelid::regclass::text, tgname from pg_trigger "
        "where tgfoid = 'cdc.capture_changes'::regproc",
        fetch=True,
    )
    action = "enable" if enabled else "disable"
    pair.finance(
        "".join(f'alter table {table} {action} trigger "{name}";' for table, name in triggers)
    )
