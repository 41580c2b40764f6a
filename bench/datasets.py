"""Source data at benchmark scale, written through capture as an application would write it.

A dataset has `orders` orders with about five items each, over a customer and a product base
that grows with it. Every order is open (PENDING, PROCESSING or REPROCESSING) when written, so
at 1M orders the open_orders export has about 1M rows, the size the memory figure asks for.
Rows are written in set-based statements of CHUNK orders, each one captured by the statement
triggers like any application statement, by WRITERS concurrent sessions (one session leaves a
core of the benchmark machine idle while the set-up writes millions of rows).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from bench.cluster import Pair
from loader.capture import install as install_capture
from workload.schema import create_source_schema

CHUNK = 50_000
WRITERS = 2
PROGRESS_EVERY = 100_000
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
    """Appends `orders` open orders and their items, CHUNK orders per statement pair, the
    chunks written by WRITERS concurrent sessions as a busy application would."""
    first, customers, products = pair.finance(
        "select (select coalesce(max(order_id), 0) from operations.orders), "
        "(select max(customer_id) from operations.customers), "
        "(select max(product_id) from operations.products)",
        fetch=True,
    )[0]
    sizes = {"customers": customers, "products": products, "days": DELIVERY_DAYS}
    chunks = [
        (first + start + 1, first + min(start + chunk, orders)) for start in range(0, orders, chunk)
    ]
    written = 0
    with ThreadPoolExecutor(WRITERS) as writers:
        for low, high in writers.map(lambda bounds: write_chunk(pair, sizes, *bounds), chunks):
            written += high - low + 1
            if progress and (written % PROGRESS_EVERY < chunk or written == orders):
                progress(f"{pair.name}: {written:,} of {orders:,} orders written")
    pair.finance(
        "select setval(pg_get_serial_sequence('operations.orders', 'order_id'), "
        "(select max(order_id) from operations.orders))"
    )


def write_chunk(pair: Pair, sizes: dict, low: int, high: int) -> tuple[int, int]:
    """Orders low..high and their items, in one transaction."""
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
        {**sizes, "low": low, "high": high, "items": ITEMS_PER_ORDER},
    )
    return low, high


def set_capture(pair: Pair, enabled: bool) -> None:
    """Capture on: every operations table's triggers, as `capture install` puts them (no
    snapshot). Off: the triggers dropped, not disabled: PostgreSQL still collects the
    transition tables of a disabled trigger, so "disabled" would charge the baseline part of
    the cost it is compared with."""
    tables = pair.finance(
        "select format('%I.%I', table_schema, table_name) from information_schema.tables "
        "where table_schema = 'operations' and table_type = 'BASE TABLE'",
        fetch=True,
    )
    function = "cdc.install_capture_triggers" if enabled else "cdc.stop_capture"
    pair.finance("".join(f"select {function}('{table}');" for (table,) in tables))
